package main

// Discovery of CRD groups. The aggregated document (/apis with the v2 Accept header) is shared by both
// servers already; the legacy /apis list belongs to the front server and learns the apiextensions group and
// every CRD group from an informer, as kube-apiserver's aggregator would publish them.

import (
	"sort"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/version"
	discoveryaggregated "k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/tools/cache"
)

func newAggregatedDiscoveryManager() discoveryaggregated.ResourceManager {
	return discoveryaggregated.NewResourceManager("apis")
}

func publishCRDGroupsInLegacyDiscovery(front *genericapiserver.GenericAPIServer, ext *apiextensionsapiserver.CustomResourceDefinitions) {
	front.DiscoveryGroupManager.AddGroup(metav1.APIGroup{
		Name:             apiextensionsv1.GroupName,
		Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: "apiextensions.k8s.io/v1", Version: "v1"}},
		PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "apiextensions.k8s.io/v1", Version: "v1"},
	})
	informer := ext.Informers.Apiextensions().V1().CustomResourceDefinitions()
	lister := informer.Lister()
	// Recompute the group from all CRDs of that group on every change: versions come and go with CRDs.
	refresh := func(obj interface{}) {
		crd, ok := obj.(*apiextensionsv1.CustomResourceDefinition)
		if !ok {
			if tomb, isTomb := obj.(cache.DeletedFinalStateUnknown); isTomb {
				crd, ok = tomb.Obj.(*apiextensionsv1.CustomResourceDefinition)
			}
			if !ok {
				return
			}
		}
		group := crd.Spec.Group
		all, err := lister.List(labels.Everything())
		if err != nil {
			return
		}
		versions := map[string]bool{}
		for _, c := range all {
			if c.Spec.Group != group || c.DeletionTimestamp != nil {
				continue
			}
			for _, v := range c.Spec.Versions {
				if v.Served {
					versions[v.Name] = true
				}
			}
		}
		if len(versions) == 0 {
			front.DiscoveryGroupManager.RemoveGroup(group)
			return
		}
		names := make([]string, 0, len(versions))
		for v := range versions {
			names = append(names, v)
		}
		// kube's version priority: v2 > v1 > v1beta2 > v1alpha1.
		sort.Slice(names, func(i, j int) bool { return version.CompareKubeAwareVersionStrings(names[i], names[j]) > 0 })
		apiGroup := metav1.APIGroup{Name: group}
		for _, v := range names {
			apiGroup.Versions = append(apiGroup.Versions, metav1.GroupVersionForDiscovery{GroupVersion: group + "/" + v, Version: v})
		}
		apiGroup.PreferredVersion = apiGroup.Versions[0]
		front.DiscoveryGroupManager.AddGroup(apiGroup)
	}
	_, _ = informer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    refresh,
		UpdateFunc: func(_, obj interface{}) { refresh(obj) },
		DeleteFunc: refresh,
	})
}
