package main

// Field selectors of core Events (involvedObject.*, reason, type): kubectl describe and kopf's tests use them.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apiserver/pkg/registry/generic"
)

func eventAttrs(obj runtime.Object) (labels.Set, fields.Set, error) {
	e, ok := obj.(*corev1.Event)
	if !ok {
		return nil, nil, fmt.Errorf("not an Event: %T", obj)
	}
	fs := generic.ObjectMetaFieldsSet(&e.ObjectMeta, true)
	fs["involvedObject.kind"] = e.InvolvedObject.Kind
	fs["involvedObject.namespace"] = e.InvolvedObject.Namespace
	fs["involvedObject.name"] = e.InvolvedObject.Name
	fs["involvedObject.uid"] = string(e.InvolvedObject.UID)
	fs["involvedObject.apiVersion"] = e.InvolvedObject.APIVersion
	fs["involvedObject.resourceVersion"] = e.InvolvedObject.ResourceVersion
	fs["involvedObject.fieldPath"] = e.InvolvedObject.FieldPath
	fs["reason"] = e.Reason
	fs["source"] = e.Source.Component
	fs["type"] = e.Type
	return labels.Set(e.Labels), fs, nil
}

func eventFieldLabel(label, value string) (string, string, error) {
	switch label {
	case "metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.namespace",
		"involvedObject.name", "involvedObject.uid", "involvedObject.apiVersion",
		"involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "source", "type":
		return label, value, nil
	}
	return "", "", fmt.Errorf("field label not supported: %s", label)
}
