package main

// Authentication by static tokens and authorization by RBAC. kube's RBAC authorizer lives in
// k8s.io/kubernetes (not packaged), so this is a small one over the same objects: Roles/ClusterRoles with
// aggregationRule, RoleBindings/ClusterRoleBindings to users, groups and service accounts. system:masters
// may do anything; every authenticated user may read discovery/OpenAPI and review its own access (kube's
// system:discovery, system:basic-user and system:public-info-viewer bootstrap roles).

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"strings"
	"sync"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/bearertoken"
	"k8s.io/apiserver/pkg/authentication/serviceaccount"
	"k8s.io/apiserver/pkg/authentication/token/tokenfile"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/informers"
	rbaclisters "k8s.io/client-go/listers/rbac/v1"
	"k8s.io/klog/v2"
)

// --- authentication ------------------------------------------------------------------------------------

// reloadingTokenFile re-reads the token file when it changes, so tests can add users while the server runs.
// A fifth column, beyond kube's token file format, gives the user extras ("key=value;key=value"): what
// kube-apiserver attaches to a pod-bound ServiceAccount token (authentication.kubernetes.io/pod-name, ...),
// which admission policies read as request.userInfo.extra.
type reloadingTokenFile struct {
	path   string
	mu     sync.Mutex
	stamp  string
	auth   authenticator.Token
	extras map[string]map[string][]string
}

func readTokenExtras(path string) (map[string]map[string][]string, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	reader := csv.NewReader(file)
	reader.FieldsPerRecord = -1
	records, err := reader.ReadAll()
	if err != nil {
		return nil, err
	}
	extras := map[string]map[string][]string{}
	for _, record := range records {
		if len(record) < 5 || strings.TrimSpace(record[4]) == "" {
			continue
		}
		extra := map[string][]string{}
		for _, pair := range strings.Split(record[4], ";") {
			key, value, found := strings.Cut(pair, "=")
			if found {
				extra[key] = append(extra[key], value)
			}
		}
		extras[record[0]] = extra
	}
	return extras, nil
}

func newTokenAuthenticator(path string) authenticator.Request {
	return group.NewAuthenticatedGroupAdder(bearertoken.New(&reloadingTokenFile{path: path}))
}

func (r *reloadingTokenFile) AuthenticateToken(ctx context.Context, token string) (*authenticator.Response, bool, error) {
	r.mu.Lock()
	if st, err := os.Stat(r.path); err == nil {
		stamp := fmt.Sprintf("%d/%d", st.ModTime().UnixNano(), st.Size())
		if stamp != r.stamp {
			auth, err := tokenfile.NewCSV(r.path)
			extras, extrasErr := readTokenExtras(r.path)
			if err == nil {
				err = extrasErr
			}
			if err != nil {
				klog.Errorf("token file %s: %v", r.path, err)
			} else {
				r.auth, r.extras, r.stamp = auth, extras, stamp
			}
		}
	}
	auth, extra := r.auth, r.extras[token]
	r.mu.Unlock()
	if auth == nil {
		return nil, false, nil
	}
	response, ok, err := auth.AuthenticateToken(ctx, token)
	if !ok || err != nil || len(extra) == 0 {
		return response, ok, err
	}
	u := response.User
	response.User = &user.DefaultInfo{Name: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: extra}
	return response, ok, err
}

// --- authorization -------------------------------------------------------------------------------------

type rbacAuthorizer struct {
	roles               rbaclisters.RoleLister
	clusterRoles        rbaclisters.ClusterRoleLister
	roleBindings        rbaclisters.RoleBindingLister
	clusterRoleBindings rbaclisters.ClusterRoleBindingLister
}

func newRBACAuthorizer(f informers.SharedInformerFactory) authorizer.Authorizer {
	r := f.Rbac().V1()
	return &rbacAuthorizer{r.Roles().Lister(), r.ClusterRoles().Lister(), r.RoleBindings().Lister(), r.ClusterRoleBindings().Lister()}
}

var discoveryPrefixes = []string{"/api", "/apis", "/openapi", "/version", "/healthz", "/livez", "/readyz"}

func (a *rbacAuthorizer) Authorize(ctx context.Context, attrs authorizer.Attributes) (authorizer.Decision, string, error) {
	u := attrs.GetUser()
	if u == nil {
		return authorizer.DecisionNoOpinion, "no user", nil
	}
	for _, g := range u.GetGroups() {
		if g == user.SystemPrivilegedGroup {
			return authorizer.DecisionAllow, "system:masters", nil
		}
	}
	if !attrs.IsResourceRequest() && attrs.GetVerb() == "get" {
		for _, p := range discoveryPrefixes {
			if attrs.GetPath() == p || strings.HasPrefix(attrs.GetPath(), p+"/") {
				return authorizer.DecisionAllow, "discovery", nil
			}
		}
	}
	if attrs.IsResourceRequest() && attrs.GetVerb() == "create" &&
		(attrs.GetAPIGroup() == "authorization.k8s.io" && strings.HasPrefix(attrs.GetResource(), "selfsubject") ||
			attrs.GetAPIGroup() == "authentication.k8s.io" && attrs.GetResource() == "selfsubjectreviews") {
		return authorizer.DecisionAllow, "basic-user", nil
	}

	crbs, err := a.clusterRoleBindings.List(labels.Everything())
	if err != nil {
		return authorizer.DecisionNoOpinion, "", err
	}
	for _, b := range crbs {
		if bindsUser(b.Subjects, u, "") && a.refAllows(b.RoleRef, "", attrs) {
			return authorizer.DecisionAllow, "ClusterRoleBinding " + b.Name, nil
		}
	}
	if ns := attrs.GetNamespace(); ns != "" {
		rbs, err := a.roleBindings.RoleBindings(ns).List(labels.Everything())
		if err != nil {
			return authorizer.DecisionNoOpinion, "", err
		}
		for _, b := range rbs {
			if bindsUser(b.Subjects, u, ns) && a.refAllows(b.RoleRef, ns, attrs) {
				return authorizer.DecisionAllow, "RoleBinding " + ns + "/" + b.Name, nil
			}
		}
	}
	return authorizer.DecisionNoOpinion, "", nil
}

func bindsUser(subjects []rbacv1.Subject, u user.Info, bindingNamespace string) bool {
	for _, s := range subjects {
		switch s.Kind {
		case rbacv1.UserKind:
			if s.Name == u.GetName() {
				return true
			}
		case rbacv1.GroupKind:
			for _, g := range u.GetGroups() {
				if g == s.Name {
					return true
				}
			}
		case rbacv1.ServiceAccountKind:
			ns := s.Namespace
			if ns == "" {
				ns = bindingNamespace
			}
			if serviceaccount.MakeUsername(ns, s.Name) == u.GetName() {
				return true
			}
		}
	}
	return false
}

func (a *rbacAuthorizer) refAllows(ref rbacv1.RoleRef, ns string, attrs authorizer.Attributes) bool {
	var rules []rbacv1.PolicyRule
	switch ref.Kind {
	case "Role":
		role, err := a.roles.Roles(ns).Get(ref.Name)
		if err != nil {
			return false
		}
		rules = role.Rules
	case "ClusterRole":
		rules = a.clusterRoleRules(ref.Name)
	}
	for i := range rules {
		if ruleAllows(&rules[i], attrs) {
			return true
		}
	}
	return false
}

// clusterRoleRules includes the rules of the ClusterRoles an aggregationRule selects (kube's aggregation
// controller copies them into the object; here they are evaluated where they are needed).
func (a *rbacAuthorizer) clusterRoleRules(name string) []rbacv1.PolicyRule {
	role, err := a.clusterRoles.Get(name)
	if err != nil {
		return nil
	}
	rules := append([]rbacv1.PolicyRule(nil), role.Rules...)
	if role.AggregationRule == nil {
		return rules
	}
	all, _ := a.clusterRoles.List(labels.Everything())
	for _, sel := range role.AggregationRule.ClusterRoleSelectors {
		s, err := metav1.LabelSelectorAsSelector(&sel)
		if err != nil {
			continue
		}
		for _, other := range all {
			if other.Name != name && s.Matches(labels.Set(other.Labels)) {
				rules = append(rules, other.Rules...)
			}
		}
	}
	return rules
}

func ruleAllows(r *rbacv1.PolicyRule, attrs authorizer.Attributes) bool {
	if !matches(r.Verbs, attrs.GetVerb()) {
		return false
	}
	if !attrs.IsResourceRequest() {
		for _, u := range r.NonResourceURLs {
			if u == "*" || u == attrs.GetPath() || strings.HasSuffix(u, "*") && strings.HasPrefix(attrs.GetPath(), strings.TrimSuffix(u, "*")) {
				return true
			}
		}
		return false
	}
	if !matches(r.APIGroups, attrs.GetAPIGroup()) {
		return false
	}
	res := attrs.GetResource()
	if sub := attrs.GetSubresource(); sub != "" {
		res += "/" + sub
	}
	resourceOK := false
	for _, want := range r.Resources {
		if want == "*" || want == res || attrs.GetSubresource() != "" && want == "*/"+attrs.GetSubresource() {
			resourceOK = true
			break
		}
	}
	if !resourceOK {
		return false
	}
	return len(r.ResourceNames) == 0 || attrs.GetName() != "" && matches(r.ResourceNames, attrs.GetName())
}

func matches(list []string, v string) bool {
	for _, x := range list {
		if x == "*" || x == v {
			return true
		}
	}
	return false
}

// --- access reviews (kubectl auth can-i) -----------------------------------------------------------------

type accessReviewREST struct {
	server *genericapiserver.GenericAPIServer
	self   bool
}

func addAccessReviews(m map[string]rest.Storage, s *genericapiserver.GenericAPIServer) {
	m["selfsubjectaccessreviews"] = &accessReviewREST{server: s, self: true}
	m["subjectaccessreviews"] = &accessReviewREST{server: s}
}

func (r *accessReviewREST) New() runtime.Object {
	if r.self {
		return &authorizationv1.SelfSubjectAccessReview{}
	}
	return &authorizationv1.SubjectAccessReview{}
}
func (r *accessReviewREST) Destroy()              {}
func (r *accessReviewREST) NamespaceScoped() bool { return false }
func (r *accessReviewREST) GetSingularName() string {
	if r.self {
		return "selfsubjectaccessreview"
	}
	return "subjectaccessreview"
}

func (r *accessReviewREST) Create(ctx context.Context, obj runtime.Object, _ rest.ValidateObjectFunc,
	_ *metav1.CreateOptions) (runtime.Object, error) {
	var who user.Info
	var ra *authorizationv1.ResourceAttributes
	var nra *authorizationv1.NonResourceAttributes
	var status *authorizationv1.SubjectAccessReviewStatus
	switch review := obj.(type) {
	case *authorizationv1.SelfSubjectAccessReview:
		who, _ = genericapirequest.UserFrom(ctx)
		ra, nra, status = review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes, &review.Status
	case *authorizationv1.SubjectAccessReview:
		who = &user.DefaultInfo{Name: review.Spec.User, Groups: review.Spec.Groups, UID: review.Spec.UID}
		ra, nra, status = review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes, &review.Status
	default:
		return nil, fmt.Errorf("unexpected %T", obj)
	}
	attrs := authorizer.AttributesRecord{User: who}
	if ra != nil {
		attrs.Verb, attrs.Namespace, attrs.APIGroup, attrs.APIVersion = ra.Verb, ra.Namespace, ra.Group, ra.Version
		attrs.Resource, attrs.Subresource, attrs.Name, attrs.ResourceRequest = ra.Resource, ra.Subresource, ra.Name, true
	} else if nra != nil {
		attrs.Verb, attrs.Path = nra.Verb, nra.Path
	}
	decision, reason, err := r.server.Authorizer.Authorize(ctx, attrs)
	status.Allowed = decision == authorizer.DecisionAllow
	status.Reason = reason
	if err != nil {
		status.EvaluationError = err.Error()
	}
	return obj, nil
}
