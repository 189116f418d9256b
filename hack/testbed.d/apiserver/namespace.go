package main

// Namespaces: deleting one marks it Terminating (NamespaceLifecycle then refuses new objects in it); the
// collector (gc.go) deletes its contents and then removes it, as kube's namespace controller does.

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/storage"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
)

type namespaceREST struct {
	builtinREST
}

func (r *namespaceREST) Delete(ctx context.Context, name string, deleteValidation rest.ValidateObjectFunc,
	options *metav1.DeleteOptions) (runtime.Object, bool, error) {
	obj, err := r.Store.Get(ctx, name, &metav1.GetOptions{})
	if err != nil {
		return nil, false, err
	}
	ns := obj.(*corev1.Namespace)
	if ns.DeletionTimestamp != nil {
		return ns, false, nil
	}
	if deleteValidation != nil {
		if err := deleteValidation(ctx, ns); err != nil {
			return nil, false, err
		}
	}
	key, err := r.Store.KeyFunc(ctx, name)
	if err != nil {
		return nil, false, err
	}
	out := &corev1.Namespace{}
	dryRun := options != nil && len(options.DryRun) > 0
	err = r.Store.Storage.GuaranteedUpdate(ctx, key, out, false, nil,
		storage.SimpleUpdate(func(existing runtime.Object) (runtime.Object, error) {
			n := existing.(*corev1.Namespace)
			if n.DeletionTimestamp == nil {
				now := metav1.Now()
				n.DeletionTimestamp = &now
				zero := int64(0)
				n.DeletionGracePeriodSeconds = &zero
			}
			n.Status.Phase = corev1.NamespaceTerminating
			return n, nil
		}), dryRun, nil)
	if err != nil {
		return nil, false, err
	}
	return out, false, nil
}

// finalize removes a terminating namespace whose contents are gone.
func (r *namespaceREST) finalize(name string) error {
	ctx := genericapirequest.NewContext()
	_, _, err := r.Store.Delete(ctx, name, rest.ValidateAllObjectFunc, &metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// ensureDefaultNamespaces creates default, kube-system, kube-public and kube-node-lease once the server serves.
func ensureDefaultNamespaces(ctx context.Context, client kubernetes.Interface) {
	for _, name := range []string{"default", "kube-system", "kube-public", "kube-node-lease"} {
		for ctx.Err() == nil {
			_, err := client.CoreV1().Namespaces().Create(ctx,
				&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			if err == nil || apierrors.IsAlreadyExists(err) {
				break
			}
			klog.V(2).Infof("creating namespace %s: %v", name, err)
			time.Sleep(100 * time.Millisecond)
		}
	}
}
