package main

// ClusterIP allocation for Services from --service-cluster-ip-range, done on create (kube-apiserver's
// service registry does this; the operator needs it because an Endpoint's IP is its Service's ClusterIP).
// An explicit clusterIP is honoured (refused if outside the range or taken); "None" stays headless;
// ExternalName gets none. Freed addresses are those no Service holds any more; a cursor walks the range so
// a just-freed address is not handed out again at once.

import (
	"context"
	"math/big"
	"net"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	genericregistry "k8s.io/apiserver/pkg/registry/generic/registry"
)

type clusterIPAllocator struct {
	mu     sync.Mutex
	cidr   *net.IPNet
	size   int64 // usable offsets are 1..size-2 (network and broadcast excluded)
	cursor int64
	store  *genericregistry.Store
	// recent covers the window in which a new Service may not be visible in a list yet.
	recent map[string]time.Time
}

func newClusterIPAllocator(cidr *net.IPNet, store *genericregistry.Store) *clusterIPAllocator {
	ones, bits := cidr.Mask.Size()
	size := new(big.Int).Lsh(big.NewInt(1), uint(bits-ones)).Int64()
	// Offset 1 is kube's "kubernetes" Service address, offset 10 its DNS: start after them.
	return &clusterIPAllocator{cidr: cidr, size: size, cursor: 10, store: store, recent: map[string]time.Time{}}
}

// beginCreate is the store's BeginCreate hook: it holds the lock until the create is finished, so two
// concurrent creates never pick the same address.
func (a *clusterIPAllocator) beginCreate(ctx context.Context, obj runtime.Object, _ *metav1.CreateOptions) (genericregistry.FinishFunc, error) {
	svc := obj.(*corev1.Service)
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return func(context.Context, bool) {}, nil
	}
	a.mu.Lock()
	finish := func(context.Context, bool) { a.mu.Unlock() }
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		svc.Spec.ClusterIPs = []string{corev1.ClusterIPNone}
		setIPv4Family(svc)
		return finish, nil
	}
	used, err := a.used()
	if err != nil {
		finish(ctx, false)
		return nil, err
	}
	ipField := field.NewPath("spec", "clusterIP")
	ip := svc.Spec.ClusterIP
	if ip != "" {
		parsed := net.ParseIP(ip)
		switch {
		case parsed == nil || !a.cidr.Contains(parsed):
			finish(ctx, false)
			return nil, invalid(svc, field.Invalid(ipField, ip,
				"provided IP is not in the valid range. The range of valid IPs is "+a.cidr.String()))
		case used[parsed.String()]:
			finish(ctx, false)
			return nil, invalid(svc, field.Invalid(ipField, ip, "provided IP is already allocated"))
		}
		ip = parsed.String()
	} else {
		ip = a.next(used)
		if ip == "" {
			finish(ctx, false)
			return nil, apierrors.NewInternalError(errFull(a.cidr.String()))
		}
	}
	svc.Spec.ClusterIP = ip
	svc.Spec.ClusterIPs = []string{ip}
	setIPv4Family(svc)
	a.recent[ip] = time.Now()
	return finish, nil
}

func (a *clusterIPAllocator) used() (map[string]bool, error) {
	list, err := a.store.List(genericapirequest.NewContext(), &metainternalversion.ListOptions{})
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, s := range list.(*corev1.ServiceList).Items {
		for _, ip := range s.Spec.ClusterIPs {
			used[ip] = true
		}
		used[s.Spec.ClusterIP] = true
	}
	for ip, at := range a.recent {
		if time.Since(at) > time.Minute {
			delete(a.recent, ip)
			continue
		}
		used[ip] = true
	}
	return used, nil
}

func (a *clusterIPAllocator) next(used map[string]bool) string {
	base := new(big.Int).SetBytes(a.cidr.IP.To16())
	for range a.size {
		a.cursor++
		if a.cursor >= a.size-1 {
			a.cursor = 1
		}
		b := new(big.Int).Add(base, big.NewInt(a.cursor)).Bytes()
		ip := net.IP(leftPad(b, 16)).String()
		if !used[ip] {
			return ip
		}
	}
	return ""
}

func leftPad(b []byte, n int) []byte {
	out := make([]byte, n)
	copy(out[n-len(b):], b)
	return out
}

func setIPv4Family(svc *corev1.Service) {
	if len(svc.Spec.IPFamilies) == 0 {
		svc.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	if svc.Spec.IPFamilyPolicy == nil {
		p := corev1.IPFamilyPolicySingleStack
		svc.Spec.IPFamilyPolicy = &p
	}
}

// keepAllocatedClusterIP: an update that omits the address (a replace or an apply that does not own it)
// keeps it, as kube does.
func keepAllocatedClusterIP(svc, old *corev1.Service) {
	if svc.Spec.ClusterIP == "" && old.Spec.ClusterIP != "" && svc.Spec.Type != corev1.ServiceTypeExternalName {
		svc.Spec.ClusterIP = old.Spec.ClusterIP
		svc.Spec.ClusterIPs = old.Spec.ClusterIPs
		if len(svc.Spec.IPFamilies) == 0 {
			svc.Spec.IPFamilies = old.Spec.IPFamilies
		}
		if svc.Spec.IPFamilyPolicy == nil {
			svc.Spec.IPFamilyPolicy = old.Spec.IPFamilyPolicy
		}
	}
}

func invalid(svc *corev1.Service, errs ...*field.Error) error {
	return apierrors.NewInvalid(corev1.SchemeGroupVersion.WithKind("Service").GroupKind(), svc.Name, errs)
}

type errFull string

func (e errFull) Error() string { return "no ClusterIP left in " + string(e) }
