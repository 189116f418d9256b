// Command testbed-apiserver is the test control plane of vpcep-operator: one process that serves a real
// Kubernetes API from Debian's k8s.io library packages, for machines where no kube-apiserver binary exists.
//
// Layout ("kube front, apiextensions behind"): a generic API server for the built-in kinds delegates every
// path it does not know to the real, unmodified apiextensions-apiserver, which serves CRDs and their custom
// resources. Both share etcd, authentication, authorization, admission and one aggregated discovery document.
// What kube-apiserver and kube-controller-manager would add and the operator relies on is small and lives in
// the other files: defaults (defaults.go), ClusterIP allocation (clusterip.go), RBAC (rbac.go), garbage and
// namespace collection (gc.go).
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	noopoteltrace "go.opentelemetry.io/otel/trace/noop"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsv1beta1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1beta1"
	apiextensionsapiserver "k8s.io/apiextensions-apiserver/pkg/apiserver"
	extoptions "k8s.io/apiextensions-apiserver/pkg/cmd/server/options"
	extopenapi "k8s.io/apiextensions-apiserver/pkg/generated/openapi"
	"k8s.io/apimachinery/pkg/runtime/schema"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/openapi"
	"k8s.io/apiserver/pkg/util/webhook"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"

	generatedopenapi "vpcep-testbed/apiserver/openapi"
)

type flags struct {
	etcd             string
	port             int
	certDir          string
	tokenFile        string
	serviceCIDR      string
	gcInterval       time.Duration
	namespacesAtBoot []string
}

func main() {
	f := flags{}
	pflag.StringVar(&f.etcd, "etcd-servers", "http://127.0.0.1:2379", "etcd client URL")
	pflag.IntVar(&f.port, "secure-port", 6443, "HTTPS port on 127.0.0.1")
	pflag.StringVar(&f.certDir, "cert-dir", "certs", "where the self-signed serving certificate is written")
	pflag.StringVar(&f.tokenFile, "token-auth-file", "tokens.csv",
		"static tokens (token,user,uid,\"group1,group2\"); re-read when the file changes")
	pflag.StringVar(&f.serviceCIDR, "service-cluster-ip-range", "10.96.0.0/16", "ClusterIP range for Services")
	pflag.DurationVar(&f.gcInterval, "gc-interval", time.Second, "period of the garbage/namespace collector")
	klog.InitFlags(nil)
	pflag.CommandLine.AddGoFlagSet(flag.CommandLine)
	pflag.Parse()

	if err := run(genericapiserver.SetupSignalContext(), f); err != nil {
		fmt.Fprintf(os.Stderr, "testbed-apiserver: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, f flags) error {
	start, phases := time.Now(), ""
	phase := func(name string) { phases += fmt.Sprintf("%s=%dms ", name, time.Since(start).Milliseconds()) }
	_, serviceNet, err := netutils.ParseCIDRSloppy(f.serviceCIDR)
	if err != nil {
		return fmt.Errorf("--service-cluster-ip-range %q: %w", f.serviceCIDR, err)
	}

	// --- the front server: built-in kinds -------------------------------------------------------------
	opts := genericoptions.NewRecommendedOptions("/registry", Codecs.LegacyCodec(servedGroupVersions()...))
	opts.Etcd.StorageConfig.Transport.ServerList = []string{f.etcd}
	opts.SecureServing.BindAddress = netutils.ParseIPSloppy("127.0.0.1")
	opts.SecureServing.BindPort = f.port
	opts.SecureServing.ServerCert.CertDirectory = f.certDir
	opts.Features.EnablePriorityAndFairness = false
	if err := opts.SecureServing.MaybeDefaultWithSelfSignedCerts("localhost", nil,
		[]net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
		return fmt.Errorf("self-signed certificate: %w", err)
	}
	phase("certs")
	runOpts := genericoptions.NewServerRunOptions()
	if err := runOpts.Complete(); err != nil {
		return err
	}

	cfg := genericapiserver.NewRecommendedConfig(Codecs)
	if err := runOpts.ApplyTo(&cfg.Config); err != nil {
		return err
	}
	if err := opts.Etcd.ApplyTo(&cfg.Config); err != nil {
		return err
	}
	if err := opts.SecureServing.ApplyTo(&cfg.Config.SecureServing, &cfg.Config.LoopbackClientConfig); err != nil {
		return err
	}
	// There is no other API server to delegate authentication and authorization to: static tokens and
	// our own RBAC authorizer. The loopback client is admitted by Complete() (AuthorizeClientBearerToken).
	cfg.Authentication.Authenticator = newTokenAuthenticator(f.tokenFile)
	cfg.ClientConfig = cfg.LoopbackClientConfig
	client, err := kubernetes.NewForConfig(cfg.LoopbackClientConfig)
	if err != nil {
		return err
	}
	dynClient, err := dynamic.NewForConfig(cfg.LoopbackClientConfig)
	if err != nil {
		return err
	}
	cfg.SharedInformerFactory = informers.NewSharedInformerFactory(client, 10*time.Minute)
	cfg.Authorization.Authorizer = newRBACAuthorizer(cfg.SharedInformerFactory)
	if err := opts.Features.ApplyTo(&cfg.Config, client, cfg.SharedInformerFactory); err != nil {
		return err
	}
	if err := opts.Admission.ApplyTo(&cfg.Config, cfg.SharedInformerFactory, client, dynClient, opts.FeatureGate,
		cfg.EffectiveVersion); err != nil {
		return err
	}
	namer := openapinamer.NewDefinitionNamer(externalScheme())
	defs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(generatedopenapi.GetOpenAPIDefinitions)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(defs, namer)
	cfg.OpenAPIConfig.Info.Title = "Kubernetes"
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(defs, namer)
	cfg.OpenAPIV3Config.Info.Title = "Kubernetes"

	// --- the apiextensions server behind it: same etcd, authn/z and admission, its own codec ----------
	extGeneric := *cfg
	extGeneric.PostStartHooks = map[string]genericapiserver.PostStartHookConfigEntry{}
	extGeneric.HealthzChecks = nil
	extGeneric.LivezChecks = nil
	extGeneric.ReadyzChecks = nil
	extEtcd := *opts.Etcd
	extEtcd.StorageConfig.Codec = apiextensionsapiserver.Codecs.LegacyCodec(
		apiextensionsv1beta1.SchemeGroupVersion, apiextensionsv1.SchemeGroupVersion)
	extGeneric.RESTOptionsGetter = extEtcd.CreateRESTOptionsGetter(
		&genericoptions.SimpleStorageFactory{StorageConfig: extEtcd.StorageConfig}, cfg.ResourceTransformers)
	extGeneric.MergedResourceConfig = apiextensionsapiserver.DefaultAPIResourceConfigSource()
	extNamer := openapinamer.NewDefinitionNamer(apiextensionsapiserver.Scheme, clientgoscheme.Scheme)
	extDefs := openapi.GetOpenAPIDefinitionsWithoutDisabledFeatures(extopenapi.GetOpenAPIDefinitions)
	extGeneric.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(extDefs, extNamer)
	extGeneric.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(extDefs, extNamer)
	crdOptionsGetter := extoptions.NewCRDRESTOptionsGetter(extEtcd, cfg.ResourceTransformers, cfg.StorageObjectCountTracker)
	extConfig := &apiextensionsapiserver.Config{
		GenericConfig: &extGeneric,
		ExtraConfig: apiextensionsapiserver.ExtraConfig{
			CRDRESTOptionsGetter: crdOptionsGetter,
			ServiceResolver:      webhook.NewDefaultServiceResolver(),
			AuthResolverWrapper: webhook.NewDefaultAuthenticationInfoResolverWrapper(nil, nil,
				cfg.LoopbackClientConfig, noopoteltrace.NewTracerProvider()),
		},
	}
	// One aggregated discovery document for both servers (kubectl reads it).
	cfg.AggregatedDiscoveryGroupManager = newAggregatedDiscoveryManager()
	extGeneric.AggregatedDiscoveryGroupManager = cfg.AggregatedDiscoveryGroupManager

	phase("config")
	ext, err := extConfig.Complete().New(genericapiserver.NewEmptyDelegate())
	if err != nil {
		return fmt.Errorf("apiextensions server: %w", err)
	}

	front, err := cfg.Complete().New("testbed-apiserver", ext.GenericAPIServer)
	if err != nil {
		return fmt.Errorf("front server: %w", err)
	}
	phase("servers")
	restOptions := cfg.RESTOptionsGetter
	stores, err := installBuiltins(front, restOptions, serviceNet)
	if err != nil {
		return err
	}
	publishCRDGroupsInLegacyDiscovery(front, ext)

	front.AddPostStartHookOrDie("testbed-bootstrap", func(hc genericapiserver.PostStartHookContext) error {
		go ensureDefaultNamespaces(hc, client)
		go ensureBootstrapRBAC(hc, client)
		return nil
	})
	front.AddPostStartHookOrDie("testbed-garbage-collector", func(hc genericapiserver.PostStartHookContext) error {
		gc, err := newCollector(cfg.LoopbackClientConfig, client, stores.namespaces, f.gcInterval)
		if err != nil {
			return err
		}
		go gc.run(hc)
		return nil
	})

	phase("builtins")
	prepared := front.PrepareRun()
	phase("prepare")
	mergeOpenAPI(front, ext.GenericAPIServer, extGeneric.OpenAPIV3Config)
	phase("openapi")
	klog.Infof("startup phases: %s", phases)
	return prepared.RunWithContext(ctx)
}

// servedGroupVersions are the built-in API versions this server stores (see builtins.go).
func servedGroupVersions() []schema.GroupVersion {
	out := []schema.GroupVersion{}
	for _, g := range builtinGroups {
		out = append(out, g.gv)
	}
	return out
}
