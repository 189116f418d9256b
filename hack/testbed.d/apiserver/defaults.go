package main

// The defaults kube-apiserver applies (k8s.io/kubernetes/pkg/apis/*/v1/defaults.go, not packaged by
// Debian) that clients and the admission plugins depend on: without them webhook matching panics on nil
// selectors, and objects read back differ from what kubectl and the operator expect. Only what is needed.

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func addDefaultingFuncs(s *runtime.Scheme) {
	s.AddTypeDefaultingFunc(&corev1.Service{}, func(o interface{}) { defaultService(o.(*corev1.Service)) })
	s.AddTypeDefaultingFunc(&corev1.Pod{}, func(o interface{}) { defaultPodSpec(&o.(*corev1.Pod).Spec) })
	// kube's SetDefaults_Namespace: every namespace carries its own name as a label, the one handle
	// namespaceSelectors have on a single namespace (admission policy bindings, NetworkPolicies).
	s.AddTypeDefaultingFunc(&corev1.Namespace{}, func(o interface{}) {
		ns := o.(*corev1.Namespace)
		if ns.Name == "" {
			return
		}
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[corev1.LabelMetadataName] = ns.Name
	})
	s.AddTypeDefaultingFunc(&corev1.Secret{}, func(o interface{}) {
		if sec := o.(*corev1.Secret); sec.Type == "" {
			sec.Type = corev1.SecretTypeOpaque
		}
	})
	s.AddTypeDefaultingFunc(&corev1.Endpoints{}, func(o interface{}) {
		for i := range o.(*corev1.Endpoints).Subsets {
			for j := range o.(*corev1.Endpoints).Subsets[i].Ports {
				defaultProtocol(&o.(*corev1.Endpoints).Subsets[i].Ports[j].Protocol)
			}
		}
	})
	s.AddTypeDefaultingFunc(&discoveryv1.EndpointSlice{}, func(o interface{}) {
		for i := range o.(*discoveryv1.EndpointSlice).Ports {
			p := &o.(*discoveryv1.EndpointSlice).Ports[i]
			if p.Protocol == nil {
				tcp := corev1.ProtocolTCP
				p.Protocol = &tcp
			}
		}
	})
	s.AddTypeDefaultingFunc(&appsv1.Deployment{}, func(o interface{}) { defaultDeployment(o.(*appsv1.Deployment)) })
	s.AddTypeDefaultingFunc(&networkingv1.NetworkPolicy{}, func(o interface{}) {
		np := o.(*networkingv1.NetworkPolicy)
		if len(np.Spec.PolicyTypes) == 0 {
			np.Spec.PolicyTypes = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}
			if len(np.Spec.Egress) > 0 {
				np.Spec.PolicyTypes = append(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
			}
		}
		for i := range np.Spec.Ingress {
			for j := range np.Spec.Ingress[i].Ports {
				if np.Spec.Ingress[i].Ports[j].Protocol == nil {
					tcp := corev1.ProtocolTCP
					np.Spec.Ingress[i].Ports[j].Protocol = &tcp
				}
			}
		}
		for i := range np.Spec.Egress {
			for j := range np.Spec.Egress[i].Ports {
				if np.Spec.Egress[i].Ports[j].Protocol == nil {
					tcp := corev1.ProtocolTCP
					np.Spec.Egress[i].Ports[j].Protocol = &tcp
				}
			}
		}
	})
	s.AddTypeDefaultingFunc(&rbacv1.RoleBinding{}, func(o interface{}) { defaultSubjects(o.(*rbacv1.RoleBinding).Subjects) })
	s.AddTypeDefaultingFunc(&rbacv1.ClusterRoleBinding{}, func(o interface{}) {
		defaultSubjects(o.(*rbacv1.ClusterRoleBinding).Subjects)
	})
	s.AddTypeDefaultingFunc(&admissionregistrationv1.ValidatingWebhookConfiguration{}, func(o interface{}) {
		for i := range o.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks {
			w := &o.(*admissionregistrationv1.ValidatingWebhookConfiguration).Webhooks[i]
			defaultWebhook(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, w.Rules)
		}
	})
	s.AddTypeDefaultingFunc(&admissionregistrationv1.MutatingWebhookConfiguration{}, func(o interface{}) {
		for i := range o.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks {
			w := &o.(*admissionregistrationv1.MutatingWebhookConfiguration).Webhooks[i]
			defaultWebhook(&w.FailurePolicy, &w.MatchPolicy, &w.NamespaceSelector, &w.ObjectSelector, &w.TimeoutSeconds, w.Rules)
			if w.ReinvocationPolicy == nil {
				never := admissionregistrationv1.NeverReinvocationPolicy
				w.ReinvocationPolicy = &never
			}
		}
	})
	s.AddTypeDefaultingFunc(&admissionregistrationv1.ValidatingAdmissionPolicy{}, func(o interface{}) {
		p := o.(*admissionregistrationv1.ValidatingAdmissionPolicy)
		if p.Spec.FailurePolicy == nil {
			fail := admissionregistrationv1.Fail
			p.Spec.FailurePolicy = &fail
		}
		defaultMatchResources(p.Spec.MatchConstraints)
	})
	s.AddTypeDefaultingFunc(&admissionregistrationv1.ValidatingAdmissionPolicyBinding{}, func(o interface{}) {
		defaultMatchResources(o.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding).Spec.MatchResources)
	})
	s.AddTypeDefaultingFunc(&admissionregistrationv1.MutatingAdmissionPolicy{}, func(o interface{}) {
		p := o.(*admissionregistrationv1.MutatingAdmissionPolicy)
		if p.Spec.FailurePolicy == nil {
			fail := admissionregistrationv1.Fail
			p.Spec.FailurePolicy = &fail
		}
		if p.Spec.ReinvocationPolicy == "" {
			p.Spec.ReinvocationPolicy = admissionregistrationv1.NeverReinvocationPolicy
		}
		defaultMatchResources(p.Spec.MatchConstraints)
	})
	s.AddTypeDefaultingFunc(&admissionregistrationv1.MutatingAdmissionPolicyBinding{}, func(o interface{}) {
		defaultMatchResources(o.(*admissionregistrationv1.MutatingAdmissionPolicyBinding).Spec.MatchResources)
	})
}

func defaultProtocol(p *corev1.Protocol) {
	if *p == "" {
		*p = corev1.ProtocolTCP
	}
}

func defaultService(svc *corev1.Service) {
	if svc.Spec.Type == "" {
		svc.Spec.Type = corev1.ServiceTypeClusterIP
	}
	if svc.Spec.SessionAffinity == "" {
		svc.Spec.SessionAffinity = corev1.ServiceAffinityNone
	}
	if svc.Spec.Type != corev1.ServiceTypeExternalName && svc.Spec.InternalTrafficPolicy == nil {
		cluster := corev1.ServiceInternalTrafficPolicyCluster
		svc.Spec.InternalTrafficPolicy = &cluster
	}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		defaultProtocol(&p.Protocol)
		if p.TargetPort == (intstr.IntOrString{}) {
			p.TargetPort = intstr.FromInt32(p.Port)
		}
	}
}

func defaultPodSpec(spec *corev1.PodSpec) {
	if spec.RestartPolicy == "" {
		spec.RestartPolicy = corev1.RestartPolicyAlways
	}
	if spec.DNSPolicy == "" {
		spec.DNSPolicy = corev1.DNSClusterFirst
	}
	if spec.SchedulerName == "" {
		spec.SchedulerName = corev1.DefaultSchedulerName
	}
	if spec.TerminationGracePeriodSeconds == nil {
		thirty := int64(corev1.DefaultTerminationGracePeriodSeconds)
		spec.TerminationGracePeriodSeconds = &thirty
	}
	if spec.SecurityContext == nil {
		spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			c := &cs[i]
			if c.TerminationMessagePath == "" {
				c.TerminationMessagePath = corev1.TerminationMessagePathDefault
			}
			if c.TerminationMessagePolicy == "" {
				c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
			}
			if c.ImagePullPolicy == "" {
				c.ImagePullPolicy = corev1.PullIfNotPresent
			}
			for j := range c.Ports {
				defaultProtocol(&c.Ports[j].Protocol)
			}
		}
	}
}

func defaultDeployment(d *appsv1.Deployment) {
	if d.Spec.Replicas == nil {
		one := int32(1)
		d.Spec.Replicas = &one
	}
	if d.Spec.Strategy.Type == "" {
		d.Spec.Strategy.Type = appsv1.RollingUpdateDeploymentStrategyType
	}
	if d.Spec.Strategy.Type == appsv1.RollingUpdateDeploymentStrategyType && d.Spec.Strategy.RollingUpdate == nil {
		quarter := intstr.FromString("25%")
		d.Spec.Strategy.RollingUpdate = &appsv1.RollingUpdateDeployment{MaxUnavailable: &quarter, MaxSurge: &quarter}
	}
	if d.Spec.RevisionHistoryLimit == nil {
		ten := int32(10)
		d.Spec.RevisionHistoryLimit = &ten
	}
	if d.Spec.ProgressDeadlineSeconds == nil {
		six := int32(600)
		d.Spec.ProgressDeadlineSeconds = &six
	}
	defaultPodSpec(&d.Spec.Template.Spec)
}

func defaultSubjects(subjects []rbacv1.Subject) {
	for i := range subjects {
		if subjects[i].APIGroup == "" && (subjects[i].Kind == rbacv1.UserKind || subjects[i].Kind == rbacv1.GroupKind) {
			subjects[i].APIGroup = rbacv1.GroupName
		}
	}
}

func defaultWebhook(fp **admissionregistrationv1.FailurePolicyType, mp **admissionregistrationv1.MatchPolicyType,
	ns, obj **metav1.LabelSelector, timeout **int32, rules []admissionregistrationv1.RuleWithOperations) {
	if *fp == nil {
		fail := admissionregistrationv1.Fail
		*fp = &fail
	}
	if *mp == nil {
		eq := admissionregistrationv1.Equivalent
		*mp = &eq
	}
	if *ns == nil {
		*ns = &metav1.LabelSelector{}
	}
	if *obj == nil {
		*obj = &metav1.LabelSelector{}
	}
	if *timeout == nil {
		ten := int32(10)
		*timeout = &ten
	}
	for i := range rules {
		if rules[i].Scope == nil {
			all := admissionregistrationv1.AllScopes
			rules[i].Scope = &all
		}
	}
}

func defaultMatchResources(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	if m.MatchPolicy == nil {
		eq := admissionregistrationv1.Equivalent
		m.MatchPolicy = &eq
	}
	for i := range m.ResourceRules {
		if m.ResourceRules[i].Scope == nil {
			all := admissionregistrationv1.AllScopes
			m.ResourceRules[i].Scope = &all
		}
	}
}
