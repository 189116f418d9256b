package main

// kubectl get columns for the built-ins people look at while debugging the operator (kube's printers live in
// k8s.io/kubernetes); other kinds show NAME and CREATED AT.

import (
	"context"
	"fmt"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apiserver/pkg/registry/rest"
)

type printer struct {
	columns []metav1.TableColumnDefinition
	cells   func(obj runtime.Object) []interface{}
}

func col(name string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: "string"}
}

var printers = map[string]printer{
	"namespaces": {[]metav1.TableColumnDefinition{col("Status")}, func(o runtime.Object) []interface{} {
		return []interface{}{string(o.(*corev1.Namespace).Status.Phase)}
	}},
	"services": {[]metav1.TableColumnDefinition{col("Type"), col("Cluster-IP"), col("Port(s)")}, func(o runtime.Object) []interface{} {
		s := o.(*corev1.Service)
		ports := []string{}
		for _, p := range s.Spec.Ports {
			ports = append(ports, fmt.Sprintf("%d/%s", p.Port, p.Protocol))
		}
		return []interface{}{string(s.Spec.Type), s.Spec.ClusterIP, strings.Join(ports, ",")}
	}},
	"pods": {[]metav1.TableColumnDefinition{col("Status"), col("IP")}, func(o runtime.Object) []interface{} {
		p := o.(*corev1.Pod)
		return []interface{}{string(p.Status.Phase), p.Status.PodIP}
	}},
	"deployments": {[]metav1.TableColumnDefinition{col("Ready"), col("Available")}, func(o runtime.Object) []interface{} {
		d := o.(*appsv1.Deployment)
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		return []interface{}{fmt.Sprintf("%d/%d", d.Status.ReadyReplicas, want), d.Status.AvailableReplicas}
	}},
	"endpointslices": {[]metav1.TableColumnDefinition{col("Endpoints")}, func(o runtime.Object) []interface{} {
		addrs := []string{}
		for _, e := range o.(*discoveryv1.EndpointSlice).Endpoints {
			addrs = append(addrs, e.Addresses...)
		}
		return []interface{}{strings.Join(addrs, ",")}
	}},
}

// tableConvertor returns kube-like columns for res, or the default NAME / CREATED AT.
func tableConvertor(res resource, fallback rest.TableConvertor) rest.TableConvertor {
	p, ok := printers[res.name]
	if !ok {
		return fallback
	}
	return p
}

func (p printer) ConvertToTable(ctx context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	table := &metav1.Table{ColumnDefinitions: append([]metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name"}}, append(p.columns, col("Age"))...)}
	add := func(o runtime.Object) error {
		m, err := meta.Accessor(o)
		if err != nil {
			return err
		}
		age := duration.HumanDuration(time.Since(m.GetCreationTimestamp().Time))
		cells := append([]interface{}{m.GetName()}, append(p.cells(o), age)...)
		table.Rows = append(table.Rows, metav1.TableRow{Cells: cells, Object: runtime.RawExtension{Object: o}})
		return nil
	}
	if meta.IsListType(obj) {
		if err := meta.EachListItem(obj, add); err != nil {
			return nil, err
		}
		if l, err := meta.ListAccessor(obj); err == nil {
			table.ResourceVersion, table.Continue, table.RemainingItemCount = l.GetResourceVersion(), l.GetContinue(), l.GetRemainingItemCount()
		}
		return table, nil
	}
	if err := add(obj); err != nil {
		return nil, err
	}
	if m, err := meta.Accessor(obj); err == nil {
		table.ResourceVersion = m.GetResourceVersion()
	}
	return table, nil
}
