package main

// One /openapi/v2 and one /openapi/v3 for both servers: the front server answers both paths, so the
// apiextensions server's CRD publishers are pointed at the front server's services, and the apiextensions
// group's own spec is added to them (kube-apiserver gets the same effect from its aggregator).

import (
	restful "github.com/emicklei/go-restful/v3"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/klog/v2"
	"k8s.io/kube-openapi/pkg/aggregator"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/common/restfuladapter"
)

// mergeOpenAPI must run after PrepareRun (which builds the specs) and before the post-start hooks (which
// start the apiextensions OpenAPI controllers).
func mergeOpenAPI(front, ext *genericapiserver.GenericAPIServer, extV3 *common.OpenAPIV3Config) {
	if front.StaticOpenAPISpec != nil && ext.StaticOpenAPISpec != nil {
		merged := *front.StaticOpenAPISpec
		if err := aggregator.MergeSpecsIgnorePathConflictRenamingDefinitionsAndParameters(&merged, ext.StaticOpenAPISpec); err != nil {
			klog.Errorf("merging OpenAPI v2 of apiextensions: %v", err)
		} else {
			ext.StaticOpenAPISpec = &merged
		}
		ext.OpenAPIVersionedService = front.OpenAPIVersionedService
	}
	if front.OpenAPIV3VersionedService == nil {
		return
	}
	for _, ws := range ext.Handler.GoRestfulContainer.RegisteredWebServices() {
		spec, err := builder3.BuildOpenAPISpecFromRoutes(restfuladapter.AdaptWebServices([]*restful.WebService{ws}), extV3)
		if err != nil {
			klog.Errorf("OpenAPI v3 of %s: %v", ws.RootPath(), err)
			continue
		}
		front.OpenAPIV3VersionedService.UpdateGroupVersion(ws.RootPath()[1:], spec)
	}
	ext.OpenAPIV3VersionedService = front.OpenAPIV3VersionedService
}
