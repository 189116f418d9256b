package main

// The collector does the part of kube-controller-manager the operator depends on: the garbage collector
// (ownerReferences, with background, foreground and orphan propagation), the namespace controller
// (contents of a Terminating namespace are deleted, then the namespace goes) and ClusterRole aggregation. It polls object metadata of
// every listable resource, CRDs included, through the loopback client; simple and bounded for a test cluster.

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
)

type collector struct {
	client     kubernetes.Interface
	discovery  discovery.DiscoveryInterface
	meta       metadata.Interface
	namespaces *namespaceREST
	interval   time.Duration
}

type item struct {
	gvr schema.GroupVersionResource
	obj metav1.PartialObjectMetadata
}

func newCollector(cfg *rest.Config, client kubernetes.Interface, namespaces *namespaceREST,
	interval time.Duration) (*collector, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, -1 // loopback: no client-side throttling
	d, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	m, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &collector{client: client, discovery: d, meta: m, namespaces: namespaces, interval: interval}, nil
}

// run polls, but a full pass happens only when something was written since the last one (a consistent
// one-item list returns etcd's current revision), or every fullPassEvery as a safety net: an idle test
// cluster then costs one small request per interval.
func (c *collector) run(ctx context.Context) {
	const fullPassEvery = 15 * time.Second
	t := time.NewTicker(c.interval)
	defer t.Stop()
	lastRevision, lastPass := "", time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			revision := c.revision(ctx)
			if revision != "" && revision == lastRevision && time.Since(lastPass) < fullPassEvery {
				continue
			}
			c.tick(ctx)
			aggregateClusterRoles(ctx, c.client)
			// The pass's own writes bump the revision: the next tick looks again, which is what
			// cascades (an owner deleted now has dependents to collect next) need.
			lastRevision, lastPass = revision, time.Now()
		}
	}
}

func (c *collector) revision(ctx context.Context) string {
	list, err := c.meta.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).
		List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		return ""
	}
	return list.ResourceVersion
}

func (c *collector) tick(ctx context.Context) {
	lists, _ := discovery.ServerPreferredResources(c.discovery) // partial results are fine
	resourceOf := map[schema.GroupVersionKind]schema.GroupVersionResource{}
	var items []item
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || !has(r.Verbs, "list") || !has(r.Verbs, "delete") {
				continue
			}
			gvr := gv.WithResource(r.Name)
			resourceOf[gv.WithKind(r.Kind)] = gvr
			list, err := c.meta.Resource(gvr).List(ctx, metav1.ListOptions{})
			if err != nil {
				continue
			}
			for _, o := range list.Items {
				items = append(items, item{gvr: gvr, obj: o})
			}
		}
	}
	exists := map[types.UID]bool{}
	dependents := map[types.UID][]item{}
	inNamespace := map[string][]item{}
	for _, it := range items {
		exists[it.obj.UID] = true
		for _, ref := range it.obj.OwnerReferences {
			dependents[ref.UID] = append(dependents[ref.UID], it)
		}
		if it.obj.Namespace != "" {
			inNamespace[it.obj.Namespace] = append(inNamespace[it.obj.Namespace], it)
		}
	}
	for _, it := range items {
		c.collectOrphaned(ctx, it, exists, resourceOf)
		if it.obj.DeletionTimestamp != nil {
			c.propagate(ctx, it, dependents[it.obj.UID])
		}
		if it.gvr.Group == "" && it.gvr.Resource == "namespaces" && it.obj.DeletionTimestamp != nil {
			c.emptyNamespace(ctx, it.obj.Name, inNamespace[it.obj.Name])
		}
	}
}

// collectOrphaned deletes an object whose owners are all gone (checked live, as the list may be stale).
func (c *collector) collectOrphaned(ctx context.Context, it item, exists map[types.UID]bool,
	resourceOf map[schema.GroupVersionKind]schema.GroupVersionResource) {
	refs := it.obj.OwnerReferences
	if len(refs) == 0 || it.obj.DeletionTimestamp != nil {
		return
	}
	for _, ref := range refs {
		if exists[ref.UID] {
			return
		}
		gv, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return
		}
		gvr, known := resourceOf[gv.WithKind(ref.Kind)]
		if !known {
			return // an owner kind we cannot see (yet): never collect on doubt
		}
		owner, err := c.meta.Resource(gvr).Namespace(it.obj.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err == nil && owner.UID == ref.UID {
			return
		}
		if err != nil && !apierrors.IsNotFound(err) {
			return
		}
	}
	klog.V(2).Infof("gc: deleting %s %s/%s: its owners are gone", it.gvr.Resource, it.obj.Namespace, it.obj.Name)
	c.delete(ctx, it, metav1.DeletePropagationBackground)
}

// propagate handles an owner being deleted with the foregroundDeletion or orphan finalizer.
func (c *collector) propagate(ctx context.Context, owner item, deps []item) {
	switch {
	case has(owner.obj.Finalizers, metav1.FinalizerDeleteDependents):
		if len(deps) == 0 {
			c.removeFinalizer(ctx, owner, metav1.FinalizerDeleteDependents)
			return
		}
		for _, d := range deps {
			if d.obj.DeletionTimestamp == nil {
				c.delete(ctx, d, metav1.DeletePropagationForeground)
			}
		}
	case has(owner.obj.Finalizers, metav1.FinalizerOrphanDependents):
		for _, d := range deps {
			var kept []metav1.OwnerReference
			for _, ref := range d.obj.OwnerReferences {
				if ref.UID != owner.obj.UID {
					kept = append(kept, ref)
				}
			}
			c.patchMetadata(ctx, d, map[string]interface{}{"ownerReferences": kept})
		}
		c.removeFinalizer(ctx, owner, metav1.FinalizerOrphanDependents)
	}
}

func (c *collector) emptyNamespace(ctx context.Context, ns string, contents []item) {
	if len(contents) == 0 {
		if err := c.namespaces.finalize(ns); err != nil {
			klog.Errorf("gc: removing namespace %s: %v", ns, err)
		}
		return
	}
	for _, it := range contents {
		if it.obj.DeletionTimestamp == nil {
			c.delete(ctx, it, metav1.DeletePropagationBackground)
		}
	}
}

func (c *collector) delete(ctx context.Context, it item, policy metav1.DeletionPropagation) {
	uid := it.obj.UID
	err := c.meta.Resource(it.gvr).Namespace(it.obj.Namespace).Delete(ctx, it.obj.Name, metav1.DeleteOptions{
		PropagationPolicy: &policy, Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		klog.Errorf("gc: deleting %s %s/%s: %v", it.gvr.Resource, it.obj.Namespace, it.obj.Name, err)
	}
}

func (c *collector) removeFinalizer(ctx context.Context, it item, finalizer string) {
	var kept []string
	for _, f := range it.obj.Finalizers {
		if f != finalizer {
			kept = append(kept, f)
		}
	}
	c.patchMetadata(ctx, it, map[string]interface{}{"finalizers": kept})
}

// patchMetadata merge-patches metadata fields, guarded by the resourceVersion it was computed from.
func (c *collector) patchMetadata(ctx context.Context, it item, fields map[string]interface{}) {
	fields["resourceVersion"] = it.obj.ResourceVersion
	patch, _ := json.Marshal(map[string]interface{}{"metadata": fields})
	_, err := c.meta.Resource(it.gvr).Namespace(it.obj.Namespace).Patch(ctx, it.obj.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		klog.Errorf("gc: patching %s %s/%s: %v", it.gvr.Resource, it.obj.Namespace, it.obj.Name, err)
	}
}

func has(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
