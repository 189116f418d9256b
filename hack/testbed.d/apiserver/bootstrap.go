package main

// Bootstrap RBAC and ClusterRole aggregation. kube-apiserver creates cluster-admin and the user-facing
// admin/edit/view roles (which aggregate labelled ClusterRoles: the chart's roles aggregate into them), and
// kube-controller-manager keeps aggregated rules filled in. Here admin/edit/view carry only what aggregates into
// them, not kube's own built-in rules for core kinds.

import (
	"context"
	"reflect"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

const aggregateTo = "rbac.authorization.k8s.io/aggregate-to-"

func bootstrapClusterRoles() []*rbacv1.ClusterRole {
	aggregating := func(name string, into string) *rbacv1.ClusterRole {
		r := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}},
			AggregationRule: &rbacv1.AggregationRule{ClusterRoleSelectors: []metav1.LabelSelector{
				{MatchLabels: map[string]string{aggregateTo + name: "true"}}}},
		}
		if into != "" {
			r.Labels[aggregateTo+into] = "true"
		}
		return r
	}
	return []*rbacv1.ClusterRole{
		{
			ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin", Labels: map[string]string{"kubernetes.io/bootstrapping": "rbac-defaults"}},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}},
				{NonResourceURLs: []string{"*"}, Verbs: []string{"*"}},
			},
		},
		aggregating("admin", ""),
		aggregating("edit", "admin"),
		aggregating("view", "edit"),
	}
}

func ensureBootstrapRBAC(ctx context.Context, client kubernetes.Interface) {
	for _, role := range bootstrapClusterRoles() {
		_, err := client.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			klog.Errorf("bootstrap ClusterRole %s: %v", role.Name, err)
		}
	}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "cluster-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.GroupKind, Name: "system:masters"}},
	}
	if _, err := client.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		klog.Errorf("bootstrap ClusterRoleBinding cluster-admin: %v", err)
	}
}

// aggregateClusterRoles writes into each aggregating ClusterRole the rules of the ClusterRoles it selects.
func aggregateClusterRoles(ctx context.Context, client kubernetes.Interface) {
	roles, err := client.RbacV1().ClusterRoles().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	for i := range roles.Items {
		role := &roles.Items[i]
		if role.AggregationRule == nil {
			continue
		}
		var rules []rbacv1.PolicyRule
		var sources []string
		for _, sel := range role.AggregationRule.ClusterRoleSelectors {
			s, err := metav1.LabelSelectorAsSelector(&sel)
			if err != nil {
				continue
			}
			for j := range roles.Items {
				other := &roles.Items[j]
				if other.Name != role.Name && s.Matches(labels.Set(other.Labels)) {
					sources = append(sources, other.Name)
				}
			}
		}
		sort.Strings(sources)
		seen := map[string]bool{}
		for _, name := range sources {
			if seen[name] {
				continue
			}
			seen[name] = true
			for j := range roles.Items {
				if roles.Items[j].Name == name {
					rules = append(rules, roles.Items[j].Rules...)
				}
			}
		}
		if reflect.DeepEqual(rules, role.Rules) || len(rules) == 0 && len(role.Rules) == 0 {
			continue
		}
		role.Rules = rules
		if _, err := client.RbacV1().ClusterRoles().Update(ctx, role, metav1.UpdateOptions{}); err != nil && !apierrors.IsConflict(err) {
			klog.Errorf("aggregating ClusterRole %s: %v", role.Name, err)
		}
	}
}
