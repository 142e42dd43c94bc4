package main

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// A pod asks to crash-loop through this annotation (set on the Deployment's
// pod template), or by serving a model whose name starts with
// --crashloop-model-prefix.
const (
	annotBehavior    = "sim.inference-operator.test/behavior"
	behaviorCrash    = "crashloop"
	crashExitCode    = 1
	crashMessageTmpl = "back-off %s restarting failed container=%s pod=%s_%s(%s)"
)

type podSim struct {
	cs            kubernetes.Interface
	nodes         *nodeTable
	readyDelay    time.Duration
	readyJitter   time.Duration
	crashInterval time.Duration
	crashPrefix   string
}

// wantsCrash: the pod carries the crash-loop annotation, or one of its
// containers is started with `--model <prefix>...`.
func (s *podSim) wantsCrash(p *corev1.Pod) bool {
	if p.Annotations[annotBehavior] == behaviorCrash {
		return true
	}
	if s.crashPrefix == "" {
		return false
	}
	for _, c := range p.Spec.Containers {
		for i := 0; i+1 < len(c.Args); i++ {
			if c.Args[i] == "--model" && strings.HasPrefix(c.Args[i+1], s.crashPrefix) {
				return true
			}
		}
	}
	return false
}

// startDelay is the pod's time from binding to ready: readyDelay plus a
// share of readyJitter fixed by the pod's UID, so the replicas of one
// Deployment become ready one after another (as on real nodes), the same
// way on every run of the simulator.
func (s *podSim) startDelay(p *corev1.Pod) time.Duration {
	if s.readyJitter <= 0 {
		return s.readyDelay
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(p.UID))
	return s.readyDelay + time.Duration(h.Sum32()%1000)*s.readyJitter/1000
}

// scheduledAt is when the pod was bound to its node (the start of the
// simulated container start-up).
func scheduledAt(p *corev1.Pod) time.Time {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time
		}
	}
	return p.CreationTimestamp.Time
}

// sync moves one pod on a simulated node towards what a kubelet would
// report. It returns how long to wait before looking at the pod again
// (0: nothing more to do).
func (s *podSim) sync(ctx context.Context, p *corev1.Pod) (time.Duration, error) {
	c, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if p.DeletionTimestamp != nil {
		// No containers to stop: finish the graceful deletion at once, as a
		// kubelet does once they have exited.
		err := s.cs.CoreV1().Pods(p.Namespace).Delete(c, p.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)), Preconditions: metav1.NewUIDPreconditions(string(p.UID))})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return 0, fmt.Errorf("delete pod %s/%s: %w", p.Namespace, p.Name, err)
		}
		return 0, nil
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		return 0, nil
	}
	since := time.Since(scheduledAt(p))
	if s.wantsCrash(p) {
		return s.crash(c, p, since)
	}
	if podReady(p) {
		return 0, nil
	}
	if wait := s.startDelay(p) - since; wait > 0 {
		return wait, nil
	}
	q := p.DeepCopy()
	s.setRunning(q)
	now := metav1.Now()
	setPodCond(q, corev1.ContainersReady, corev1.ConditionTrue, "", "", now)
	setPodCond(q, corev1.PodReady, corev1.ConditionTrue, "", "", now)
	q.Status.ContainerStatuses = nil
	for _, ct := range q.Spec.Containers {
		q.Status.ContainerStatuses = append(q.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image, ImageID: "sim://" + ct.Image,
			ContainerID: fmt.Sprintf("sim://%s-%s", q.UID, ct.Name), Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := s.cs.CoreV1().Pods(q.Namespace).UpdateStatus(c, q, metav1.UpdateOptions{}); err != nil {
		return 0, fmt.Errorf("update status of pod %s/%s: %w", q.Namespace, q.Name, err)
	}
	logf("pod %s/%s on %s: Running, Ready (%s)", q.Namespace, q.Name, q.Spec.NodeName, q.Status.PodIP)
	return 0, nil
}

// crash reports every container as crash-looping: one more restart every
// crashInterval, waiting in CrashLoopBackOff between them, never ready.
func (s *podSim) crash(ctx context.Context, p *corev1.Pod, since time.Duration) (time.Duration, error) {
	restarts := int32(since / s.crashInterval)
	next := s.crashInterval - since%s.crashInterval
	if len(p.Status.ContainerStatuses) == len(p.Spec.Containers) && len(p.Status.ContainerStatuses) > 0 {
		cs := p.Status.ContainerStatuses[0]
		if cs.RestartCount == restarts && cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff" {
			return next, nil
		}
	}
	q := p.DeepCopy()
	s.setRunning(q)
	now := metav1.Now()
	setPodCond(q, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady",
		"containers with unready status: ["+containerNames(q)+"]", now)
	setPodCond(q, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady",
		"containers with unready status: ["+containerNames(q)+"]", now)
	exited := metav1.NewTime(now.Add(-time.Second))
	q.Status.ContainerStatuses = nil
	for _, ct := range q.Spec.Containers {
		q.Status.ContainerStatuses = append(q.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: ct.Name, Image: ct.Image, ImageID: "sim://" + ct.Image,
			ContainerID: fmt.Sprintf("sim://%s-%s-%d", q.UID, ct.Name, restarts), Ready: false, Started: ptr.To(false),
			RestartCount: restarts,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff",
				Message: fmt.Sprintf(crashMessageTmpl, s.crashInterval, ct.Name, q.Name, q.Namespace, q.UID)}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: crashExitCode, Reason: "Error", StartedAt: exited, FinishedAt: exited,
				ContainerID: fmt.Sprintf("sim://%s-%s-%d", q.UID, ct.Name, restarts)}},
		})
	}
	if _, err := s.cs.CoreV1().Pods(q.Namespace).UpdateStatus(ctx, q, metav1.UpdateOptions{}); err != nil {
		return 0, fmt.Errorf("update status of pod %s/%s: %w", q.Namespace, q.Name, err)
	}
	if restarts == 0 {
		logf("pod %s/%s on %s: crash-looping", q.Namespace, q.Name, q.Spec.NodeName)
	}
	return next, nil
}

// setRunning fills what a started pod has whatever its containers do.
func (s *podSim) setRunning(q *corev1.Pod) {
	now := metav1.Now()
	q.Status.Phase = corev1.PodRunning
	hostIP := s.nodes.nodeIP(q.Spec.NodeName)
	q.Status.HostIP = hostIP
	q.Status.HostIPs = []corev1.HostIP{{IP: hostIP}}
	if q.Status.PodIP == "" {
		ip := s.nodes.nextPodIP(q.Spec.NodeName)
		q.Status.PodIP = ip
		q.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	}
	if q.Status.StartTime == nil {
		q.Status.StartTime = &now
	}
	setPodCond(q, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", "", now)
	setPodCond(q, corev1.PodInitialized, corev1.ConditionTrue, "", "", now)
}

func containerNames(p *corev1.Pod) string {
	names := make([]string, 0, len(p.Spec.Containers))
	for _, c := range p.Spec.Containers {
		names = append(names, c.Name)
	}
	return strings.Join(names, " ")
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// setPodCond sets one condition, keeping lastTransitionTime when the status
// does not change.
func setPodCond(p *corev1.Pod, t corev1.PodConditionType, st corev1.ConditionStatus, reason, msg string, now metav1.Time) {
	for i := range p.Status.Conditions {
		c := &p.Status.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != st {
			c.LastTransitionTime = now
		}
		c.Status, c.Reason, c.Message = st, reason, msg
		return
	}
	p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: t, Status: st,
		Reason: reason, Message: msg, LastTransitionTime: now})
}
