// Command inference-operator-go is the InferenceService operator written with
// controller-runtime, as its documentation and kubebuilder's scaffolding teach:
// a manager with default options, one controller For InferenceService that
// Owns Deployments and Services, server-side apply, a status update, requeue
// after 30 s (60 s on error). Benchmark peer of inference-operator (README.md).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

const (
	manager = "inference-operator-go"
	image   = "vllm/vllm-openai:v0.6.3"
	port    = 8000
)

var gpuProducts = map[string][]string{
	"A100": {"NVIDIA-A100-SXM4-40GB", "NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-PCIE-40GB", "NVIDIA-A100-80GB-PCIe"},
	"H100": {"NVIDIA-H100-80GB-HBM3", "NVIDIA-H100-SXM5-80GB", "NVIDIA-H100-PCIe", "NVIDIA-H100-NVL"},
	"L40S": {"NVIDIA-L40S"},
}

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(AddToScheme(scheme))
}

// InferenceServiceReconciler reconciles InferenceServices.
type InferenceServiceReconciler struct {
	client.Client
}

func selectorLabels(name string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/instance": name,
		"app.kubernetes.io/name":     "inference-server",
	}
}

func labels(name string) map[string]string {
	l := selectorLabels(name)
	l["app.kubernetes.io/component"] = "model-server"
	l["app.kubernetes.io/managed-by"] = manager
	l["app.kubernetes.io/part-of"] = "inference-operator"
	return l
}

func ownerRef(isvc *InferenceService) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(GroupVersion.String()).WithKind("InferenceService").
		WithName(isvc.Name).WithUID(isvc.UID).
		WithController(true).WithBlockOwnerDeletion(true)
}

func desiredDeployment(isvc *InferenceService) *appsv1ac.DeploymentApplyConfiguration {
	replicas, batch := int32(1), int32(32)
	if isvc.Spec.Replicas != nil {
		replicas = *isvc.Spec.Replicas
	}
	if isvc.Spec.MaxBatchSize != nil {
		batch = *isvc.Spec.MaxBatchSize
	}
	container := corev1ac.Container().
		WithName("model-server").
		WithImage(image).
		WithArgs("--model", isvc.Spec.Model, "--max-num-seqs", strconv.Itoa(int(batch)), "--port", strconv.Itoa(port)).
		WithPorts(corev1ac.ContainerPort().WithName("http").WithContainerPort(port).WithProtocol(corev1.ProtocolTCP)).
		WithResources(corev1ac.ResourceRequirements().WithLimits(corev1.ResourceList{
			"nvidia.com/gpu": resourceOne,
		})).
		WithReadinessProbe(corev1ac.Probe().
			WithHTTPGet(corev1ac.HTTPGetAction().WithPath("/health").WithPort(intstr.FromString("http"))).
			WithInitialDelaySeconds(10).WithPeriodSeconds(10))
	affinity := corev1ac.Affinity().WithNodeAffinity(corev1ac.NodeAffinity().
		WithRequiredDuringSchedulingIgnoredDuringExecution(corev1ac.NodeSelector().
			WithNodeSelectorTerms(corev1ac.NodeSelectorTerm().
				WithMatchExpressions(corev1ac.NodeSelectorRequirement().
					WithKey("nvidia.com/gpu.product").
					WithOperator(corev1.NodeSelectorOpIn).
					WithValues(gpuProducts[isvc.Spec.GPUType]...)))))
	return appsv1ac.Deployment(isvc.Name, isvc.Namespace).
		WithLabels(labels(isvc.Name)).
		WithOwnerReferences(ownerRef(isvc)).
		WithSpec(appsv1ac.DeploymentSpec().
			WithReplicas(replicas).
			WithSelector(metav1ac.LabelSelector().WithMatchLabels(selectorLabels(isvc.Name))).
			WithTemplate(corev1ac.PodTemplateSpec().
				WithLabels(labels(isvc.Name)).
				WithSpec(corev1ac.PodSpec().
					WithContainers(container).
					WithAffinity(affinity).
					WithTolerations(corev1ac.Toleration().
						WithKey("nvidia.com/gpu").
						WithOperator(corev1.TolerationOpExists).
						WithEffect(corev1.TaintEffectNoSchedule)))))
}

func desiredService(isvc *InferenceService) *corev1ac.ServiceApplyConfiguration {
	return corev1ac.Service(isvc.Name, isvc.Namespace).
		WithLabels(labels(isvc.Name)).
		WithOwnerReferences(ownerRef(isvc)).
		WithSpec(corev1ac.ServiceSpec().
			WithType(corev1.ServiceTypeClusterIP).
			WithSelector(selectorLabels(isvc.Name)).
			WithPorts(corev1ac.ServicePort().
				WithName("http").WithPort(port).
				WithTargetPort(intstr.FromString("http")).
				WithProtocol(corev1.ProtocolTCP)))
}

type verdict struct {
	phase                        string
	ready, progressing, degraded metav1.ConditionStatus
	readyR, progR, degR          string
	readyM, progM, degM          string
}

// decide derives the phase and conditions exactly as inference-operator does.
func decide(dep *appsv1ac.DeploymentApplyConfiguration, want int32) verdict {
	v := verdict{degraded: metav1.ConditionFalse, degR: "AsExpected", degM: "no failure observed"}
	st := dep.Status
	if st == nil {
		st = appsv1ac.DeploymentStatus()
	}
	var prog *appsv1ac.DeploymentConditionApplyConfiguration
	var failed *appsv1ac.DeploymentConditionApplyConfiguration
	for i := range st.Conditions {
		c := &st.Conditions[i]
		switch deref(c.Type) {
		case appsv1.DeploymentProgressing:
			prog = c
			if deref(c.Status) == corev1.ConditionFalse && deref(c.Reason) == "ProgressDeadlineExceeded" {
				failed = c
			}
		case appsv1.DeploymentReplicaFailure:
			if deref(c.Status) == corev1.ConditionTrue && failed == nil {
				failed = c
			}
		}
	}
	if failed != nil {
		r, m := deref(failed.Reason), deref(failed.Message)
		if r == "" {
			r = "DeploymentFailed"
		}
		if m == "" {
			m = "the Deployment failed"
		}
		return verdict{"Failed", metav1.ConditionFalse, metav1.ConditionFalse, metav1.ConditionTrue, r, r, r, m, m, m}
	}
	observed := deref(st.ObservedGeneration) >= deref(dep.Generation)
	ready, updated, replicas := deref(st.ReadyReplicas), deref(st.UpdatedReplicas), deref(st.Replicas)
	specReplicas := int32(1)
	if dep.Spec != nil && dep.Spec.Replicas != nil {
		specReplicas = *dep.Spec.Replicas
	}
	rolled := observed && specReplicas == want && updated >= want && ready >= want && replicas <= updated
	switch {
	case rolled && want == 0:
		v.phase, v.ready, v.readyR, v.readyM = "Ready", metav1.ConditionTrue, "ScaledToZero", "0 replicas requested"
		v.progressing, v.progR, v.progM = metav1.ConditionFalse, "RolloutComplete", "scaled to zero"
	case rolled:
		v.phase, v.ready, v.readyR = "Ready", metav1.ConditionTrue, "AllReplicasReady"
		v.readyM = fmt.Sprintf("%d/%d replicas ready", ready, want)
		v.progressing, v.progR, v.progM = metav1.ConditionFalse, "RolloutComplete", "every replica runs the current spec"
	default:
		v.phase = "Pending"
		if ready > 0 || replicas > 0 {
			v.phase = "Progressing"
		}
		v.ready = metav1.ConditionFalse
		if observed {
			v.readyR, v.readyM = "ReplicasNotReady", fmt.Sprintf("%d/%d replicas ready, %d updated", ready, want, updated)
		} else {
			v.readyR, v.readyM = "RolloutPending", "the Deployment has not observed the latest spec yet"
		}
		v.progressing, v.progR, v.progM = metav1.ConditionTrue, "RollingOut", "waiting for replicas to become ready"
		if prog != nil && deref(prog.Reason) != "" {
			v.progR = deref(prog.Reason)
		}
		if prog != nil && deref(prog.Message) != "" {
			v.progM = deref(prog.Message)
		}
	}
	return v
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (r *InferenceServiceReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := ctrl.LoggerFrom(ctx)
	if err := r.reconcile(ctx, req); err != nil {
		log.Error(err, "reconcile failed")
		return ctrl.Result{RequeueAfter: 60 * time.Second}, nil
	}
	return ctrl.Result{RequeueAfter: 30 * time.Second}, nil
}

func (r *InferenceServiceReconciler) reconcile(ctx context.Context, req ctrl.Request) error {
	var isvc InferenceService
	if err := r.Get(ctx, req.NamespacedName, &isvc); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // deleted; its children go with it (ownerReferences)
		}
		return err
	}
	dep := desiredDeployment(&isvc)
	if err := r.Apply(ctx, dep, client.FieldOwner(manager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Deployment: %w", err)
	}
	if err := r.Apply(ctx, desiredService(&isvc), client.FieldOwner(manager), client.ForceOwnership); err != nil {
		return fmt.Errorf("apply Service: %w", err)
	}

	want := int32(1)
	if isvc.Spec.Replicas != nil {
		want = *isvc.Spec.Replicas
	}
	v := decide(dep, want)
	old := isvc.Status.DeepCopy()
	st := &isvc.Status
	st.ObservedGeneration = isvc.Generation
	st.Replicas, st.ReadyReplicas = 0, 0
	if dep.Status != nil {
		st.Replicas, st.ReadyReplicas = deref(dep.Status.Replicas), deref(dep.Status.ReadyReplicas)
	}
	st.Endpoint = fmt.Sprintf("http://%s.%s.svc:%d", isvc.Name, isvc.Namespace, port)
	st.Phase = v.phase
	st.Selector = fmt.Sprintf("app.kubernetes.io/instance=%s,app.kubernetes.io/name=inference-server", isvc.Name)
	for _, c := range []metav1.Condition{
		{Type: "Ready", Status: v.ready, Reason: v.readyR, Message: v.readyM},
		{Type: "Progressing", Status: v.progressing, Reason: v.progR, Message: v.progM},
		{Type: "Degraded", Status: v.degraded, Reason: v.degR, Message: v.degM},
	} {
		c.ObservedGeneration = isvc.Generation
		meta.SetStatusCondition(&st.Conditions, c) // keeps lastTransitionTime unless the status flips
	}
	if !equality.Semantic.DeepEqual(old, st) {
		if err := r.Status().Update(ctx, &isvc); err != nil {
			return fmt.Errorf("update status: %w", err)
		}
	}
	return nil
}

func (r *InferenceServiceReconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&InferenceService{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Named("inferenceservice").
		Complete(r)
}

func main() {
	var metricsAddr, probeAddr string
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080", "The address the metrics endpoint binds to (0 disables it).")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: metricsAddr},
		HealthProbeBindAddress: probeAddr,
	})
	if err != nil {
		setupLog.Error(err, "unable to create manager")
		os.Exit(1)
	}
	if err := (&InferenceServiceReconciler{Client: mgr.GetClient()}).SetupWithManager(mgr); err != nil {
		setupLog.Error(err, "unable to create controller")
		os.Exit(1)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	// Ready once the informers have synced (not just once the process runs).
	if err := mgr.AddReadyzCheck("informers", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !mgr.GetCache().WaitForCacheSync(ctx) {
			return errors.New("informer caches not synced")
		}
		return nil
	}); err != nil {
		setupLog.Error(err, "unable to set up ready check")
		os.Exit(1)
	}
	setupLog.Info("starting manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "problem running manager")
		os.Exit(1)
	}
}
