package main

// The built-in kinds. kube-apiserver keeps internal Go types and per-kind registries in k8s.io/kubernetes,
// which Debian does not ship; here every k8s.io/api type is registered as its own internal version, so
// conversion is a no-op, and one reflective strategy (generation, status subresource) serves all kinds.

import (
	"context"
	"fmt"
	"net"
	"reflect"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/generic"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/apiserver/pkg/storage/names"
)

// resource is one served collection. status: has a /status subresource that alone may change .status.
type resource struct {
	name       string
	example    runtime.Object
	namespaced bool
	status     bool
}

// shortNames and the "all" category, as kube publishes them in discovery (kubectl get ns, svc, all).
var shortNames = map[string][]string{
	"namespaces": {"ns"}, "services": {"svc"}, "endpoints": {"ep"}, "configmaps": {"cm"}, "events": {"ev"},
	"pods": {"po"}, "serviceaccounts": {"sa"}, "nodes": {"no"}, "deployments": {"deploy"}, "replicasets": {"rs"},
	"statefulsets": {"sts"}, "daemonsets": {"ds"}, "networkpolicies": {"netpol"}, "ingresses": {"ing"},
	"poddisruptionbudgets": {"pdb"},
}

var inCategoryAll = map[string]bool{"services": true, "pods": true, "deployments": true, "replicasets": true,
	"statefulsets": true, "daemonsets": true}

// builtinREST is a store that also names its short names and categories.
type builtinREST struct {
	*genericregistry.Store
	res resource
}

func (r *builtinREST) ShortNames() []string { return shortNames[r.res.name] }
func (r *builtinREST) Categories() []string {
	if inCategoryAll[r.res.name] {
		return []string{"all"}
	}
	return nil
}

type apiGroup struct {
	gv        schema.GroupVersion
	addTypes  func(*runtime.Scheme) error
	resources []resource
}

var builtinGroups = []apiGroup{
	{corev1.SchemeGroupVersion, corev1.AddToScheme, []resource{
		{"namespaces", &corev1.Namespace{}, false, true},
		{"services", &corev1.Service{}, true, true},
		{"endpoints", &corev1.Endpoints{}, true, false},
		{"configmaps", &corev1.ConfigMap{}, true, false},
		{"secrets", &corev1.Secret{}, true, false},
		{"events", &corev1.Event{}, true, false},
		{"pods", &corev1.Pod{}, true, true},
		{"serviceaccounts", &corev1.ServiceAccount{}, true, false},
		{"nodes", &corev1.Node{}, false, true},
	}},
	{appsv1.SchemeGroupVersion, appsv1.AddToScheme, []resource{
		{"deployments", &appsv1.Deployment{}, true, true},
		{"replicasets", &appsv1.ReplicaSet{}, true, true},
		{"statefulsets", &appsv1.StatefulSet{}, true, true},
		{"daemonsets", &appsv1.DaemonSet{}, true, true},
	}},
	{eventsv1.SchemeGroupVersion, eventsv1.AddToScheme, []resource{{"events", &eventsv1.Event{}, true, false}}},
	{coordinationv1.SchemeGroupVersion, coordinationv1.AddToScheme, []resource{{"leases", &coordinationv1.Lease{}, true, false}}},
	{discoveryv1.SchemeGroupVersion, discoveryv1.AddToScheme, []resource{
		{"endpointslices", &discoveryv1.EndpointSlice{}, true, false},
	}},
	{networkingv1.SchemeGroupVersion, networkingv1.AddToScheme, []resource{
		{"networkpolicies", &networkingv1.NetworkPolicy{}, true, false},
		{"ingresses", &networkingv1.Ingress{}, true, true},
	}},
	{policyv1.SchemeGroupVersion, policyv1.AddToScheme, []resource{
		{"poddisruptionbudgets", &policyv1.PodDisruptionBudget{}, true, true},
	}},
	{rbacv1.SchemeGroupVersion, rbacv1.AddToScheme, []resource{
		{"roles", &rbacv1.Role{}, true, false},
		{"rolebindings", &rbacv1.RoleBinding{}, true, false},
		{"clusterroles", &rbacv1.ClusterRole{}, false, false},
		{"clusterrolebindings", &rbacv1.ClusterRoleBinding{}, false, false},
	}},
	{admissionregistrationv1.SchemeGroupVersion, admissionregistrationv1.AddToScheme, []resource{
		{"validatingwebhookconfigurations", &admissionregistrationv1.ValidatingWebhookConfiguration{}, false, false},
		{"mutatingwebhookconfigurations", &admissionregistrationv1.MutatingWebhookConfiguration{}, false, false},
		{"validatingadmissionpolicies", &admissionregistrationv1.ValidatingAdmissionPolicy{}, false, true},
		{"validatingadmissionpolicybindings", &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}, false, false},
		{"mutatingadmissionpolicies", &admissionregistrationv1.MutatingAdmissionPolicy{}, false, false},
		{"mutatingadmissionpolicybindings", &admissionregistrationv1.MutatingAdmissionPolicyBinding{}, false, false},
	}},
	// Create-only reviews answered by the authorizer (kubectl auth can-i); see rbac.go.
	{authorizationv1.SchemeGroupVersion, authorizationv1.AddToScheme, nil},
}

var (
	// Scheme knows every served type twice: as v1 (the wire) and as internal (the same Go type).
	Scheme = runtime.NewScheme()
	Codecs = serializer.NewCodecFactory(Scheme)
)

func init() {
	for _, g := range builtinGroups {
		must(g.addTypes(Scheme))
		internal := schema.GroupVersion{Group: g.gv.Group, Version: runtime.APIVersionInternal}
		for kind, t := range Scheme.KnownTypes(g.gv) {
			if t.PkgPath() == reflect.TypeOf(metav1.Status{}).PkgPath() {
				continue // options and status types of meta/v1 are handled by the API machinery itself
			}
			Scheme.AddKnownTypeWithName(internal.WithKind(kind), reflect.New(t).Interface().(runtime.Object))
		}
	}
	metav1.AddToGroupVersion(Scheme, schema.GroupVersion{Version: "v1"})
	Scheme.AddUnversionedTypes(schema.GroupVersion{Version: "v1"}, &metav1.Status{}, &metav1.APIVersions{},
		&metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{})
	addDefaultingFuncs(Scheme)
	must(Scheme.AddFieldLabelConversionFunc(corev1.SchemeGroupVersion.WithKind("Event"), eventFieldLabel))
}

// externalScheme has the served types without internal versions: OpenAPI's group-version-kind extensions
// must not mention "__internal".
func externalScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, g := range builtinGroups {
		must(g.addTypes(s))
	}
	return s
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// strategy is the one create/update/delete strategy of every built-in kind.
type strategy struct {
	runtime.ObjectTyper
	names.NameGenerator
	res resource
}

func (s strategy) NamespaceScoped() bool { return s.res.namespaced }

func (s strategy) PrepareForCreate(ctx context.Context, obj runtime.Object) {
	meta, _ := metaOf(obj)
	if hasField(obj, "Spec") {
		meta.SetGeneration(1)
	}
	if ns, ok := obj.(*corev1.Namespace); ok {
		ns.Status = corev1.NamespaceStatus{Phase: corev1.NamespaceActive}
		if len(ns.Spec.Finalizers) == 0 {
			ns.Spec.Finalizers = []corev1.FinalizerName{corev1.FinalizerKubernetes}
		}
	}
}

// PrepareForUpdate keeps .status when the kind has a status subresource and bumps generation on a spec change:
// the two behaviours controllers (and kopf's observedGeneration) rely on.
func (s strategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	if s.res.status {
		copyField(obj, old, "Status")
	}
	if svc, ok := obj.(*corev1.Service); ok {
		keepAllocatedClusterIP(svc, old.(*corev1.Service))
	}
	bumpGenerationOnSpecChange(obj, old)
}

func bumpGenerationOnSpecChange(obj, old runtime.Object) {
	if !hasField(obj, "Spec") {
		return
	}
	newSpec := reflect.ValueOf(obj).Elem().FieldByName("Spec").Interface()
	oldSpec := reflect.ValueOf(old).Elem().FieldByName("Spec").Interface()
	if !apiequality.Semantic.DeepEqual(newSpec, oldSpec) {
		meta, _ := metaOf(obj)
		oldMeta, _ := metaOf(old)
		meta.SetGeneration(oldMeta.GetGeneration() + 1)
	}
}

func (s strategy) Validate(ctx context.Context, obj runtime.Object) field.ErrorList  { return nil }
func (s strategy) WarningsOnCreate(ctx context.Context, obj runtime.Object) []string { return nil }
func (s strategy) Canonicalize(obj runtime.Object)                                   {}
func (s strategy) AllowCreateOnUpdate() bool {
	return s.res.name == "endpoints" || s.res.name == "leases" || s.res.name == "events"
}
func (s strategy) AllowUnconditionalUpdate() bool { return true }
func (s strategy) ValidateUpdate(ctx context.Context, obj, old runtime.Object) field.ErrorList {
	return nil
}
func (s strategy) WarningsOnUpdate(ctx context.Context, obj, old runtime.Object) []string { return nil }

// DefaultGarbageCollectionPolicy: deleting an owner deletes its dependents in the background (as kube does).
func (s strategy) DefaultGarbageCollectionPolicy(ctx context.Context) rest.GarbageCollectionPolicy {
	return rest.DeleteDependents
}

// statusStrategy serves /status: only .status changes.
type statusStrategy struct{ strategy }

func (s statusStrategy) PrepareForUpdate(ctx context.Context, obj, old runtime.Object) {
	copyField(obj, old, "Spec")
	meta, _ := metaOf(obj)
	oldMeta, _ := metaOf(old)
	meta.SetLabels(oldMeta.GetLabels())
	meta.SetAnnotations(oldMeta.GetAnnotations())
	meta.SetFinalizers(oldMeta.GetFinalizers())
	meta.SetOwnerReferences(oldMeta.GetOwnerReferences())
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return o, nil
}

func hasField(obj runtime.Object, name string) bool {
	return reflect.ValueOf(obj).Elem().FieldByName(name).IsValid()
}

// copyField sets obj.<name> = from.<name> when the kind has that field.
func copyField(obj, from runtime.Object, name string) {
	dst := reflect.ValueOf(obj).Elem().FieldByName(name)
	if dst.IsValid() {
		dst.Set(reflect.ValueOf(from).Elem().FieldByName(name))
	}
}

// builtinStores are the stores other parts of the server act on directly.
type builtinStores struct {
	namespaces *namespaceREST
}

func newStore(gv schema.GroupVersion, res resource, optsGetter generic.RESTOptionsGetter) (*genericregistry.Store, error) {
	t := reflect.TypeOf(res.example).Elem()
	list, err := Scheme.New(gv.WithKind(t.Name() + "List"))
	if err != nil {
		return nil, err
	}
	listType := reflect.TypeOf(list).Elem()
	gr := gv.WithResource(res.name).GroupResource()
	st := strategy{ObjectTyper: Scheme, NameGenerator: names.SimpleNameGenerator, res: res}
	store := &genericregistry.Store{
		NewFunc:                   func() runtime.Object { return reflect.New(t).Interface().(runtime.Object) },
		NewListFunc:               func() runtime.Object { return reflect.New(listType).Interface().(runtime.Object) },
		DefaultQualifiedResource:  gr,
		SingularQualifiedResource: schema.GroupResource{Group: gv.Group, Resource: lower(t.Name())},
		CreateStrategy:            st,
		UpdateStrategy:            st,
		DeleteStrategy:            st,
		TableConvertor:            tableConvertor(res, rest.NewDefaultTableConvertor(gr)),
	}
	attrs := storage.DefaultClusterScopedAttr
	if res.namespaced {
		attrs = storage.DefaultNamespaceScopedAttr
	}
	if gv == corev1.SchemeGroupVersion && res.name == "events" {
		attrs = eventAttrs
	}
	store.PredicateFunc = func(l labels.Selector, f fields.Selector) storage.SelectionPredicate {
		return storage.SelectionPredicate{Label: l, Field: f, GetAttrs: attrs}
	}
	if err := store.CompleteWithOptions(&generic.StoreOptions{RESTOptions: optsGetter, AttrFunc: attrs}); err != nil {
		return nil, fmt.Errorf("%s: %w", gr, err)
	}
	return store, nil
}

func statusStore(main *genericregistry.Store, res resource) *statusREST {
	s := *main
	st := statusStrategy{main.UpdateStrategy.(strategy)}
	s.CreateStrategy, s.UpdateStrategy, s.DeleteStrategy = nil, st, nil
	return &statusREST{store: &s}
}

// statusREST is the /status subresource: get and update only.
type statusREST struct{ store *genericregistry.Store }

func (r *statusREST) New() runtime.Object { return r.store.New() }
func (r *statusREST) Destroy()            {}
func (r *statusREST) Get(ctx context.Context, name string, o *metav1.GetOptions) (runtime.Object, error) {
	return r.store.Get(ctx, name, o)
}
func (r *statusREST) Update(ctx context.Context, name string, objInfo rest.UpdatedObjectInfo,
	createValidation rest.ValidateObjectFunc, updateValidation rest.ValidateObjectUpdateFunc,
	forceAllowCreate bool, options *metav1.UpdateOptions) (runtime.Object, bool, error) {
	// Subresources never create (kube's status stores pass false too).
	return r.store.Update(ctx, name, objInfo, createValidation, updateValidation, false, options)
}

// installBuiltins builds the stores and installs the legacy core group and the named groups.
func installBuiltins(s *genericapiserver.GenericAPIServer, optsGetter generic.RESTOptionsGetter,
	serviceNet *net.IPNet) (*builtinStores, error) {
	out := &builtinStores{}
	var named []*genericapiserver.APIGroupInfo
	for _, g := range builtinGroups {
		info := genericapiserver.NewDefaultAPIGroupInfo(g.gv.Group, Scheme, metav1.ParameterCodec, Codecs)
		storageMap := map[string]rest.Storage{}
		for _, res := range g.resources {
			store, err := newStore(g.gv, res, optsGetter)
			if err != nil {
				return nil, err
			}
			var main rest.Storage = &builtinREST{Store: store, res: res}
			switch {
			case g.gv == corev1.SchemeGroupVersion && res.name == "namespaces":
				out.namespaces = &namespaceREST{builtinREST{Store: store, res: res}}
				main = out.namespaces
			case g.gv == corev1.SchemeGroupVersion && res.name == "services":
				alloc := newClusterIPAllocator(serviceNet, store)
				store.BeginCreate = alloc.beginCreate
			}
			storageMap[res.name] = main
			if res.status {
				storageMap[res.name+"/status"] = statusStore(store, res)
			}
		}
		if g.gv == authorizationv1.SchemeGroupVersion {
			addAccessReviews(storageMap, s)
		}
		info.VersionedResourcesStorageMap[g.gv.Version] = storageMap
		if g.gv.Group == "" {
			if err := s.InstallLegacyAPIGroup(genericapiserver.DefaultLegacyAPIPrefix, &info); err != nil {
				return nil, err
			}
			continue
		}
		named = append(named, &info)
	}
	if err := s.InstallAPIGroups(named...); err != nil {
		return nil, err
	}
	return out, nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
