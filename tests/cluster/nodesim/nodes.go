package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

const (
	leaseNamespace       = "kube-node-lease"
	leaseDurationSeconds = 40 // what a kubelet uses
	apiTimeout           = 15 * time.Second
	kubeletVersion       = "v1.37.2-sim"
)

// nodeTable remembers the simulated nodes the informer has seen and gives
// each a stable index (its InternalIP and pod IP range derive from it).
type nodeTable struct {
	mu    sync.Mutex
	index map[string]int
	next  int
	ips   map[string]int // node -> last pod IP host part handed out
}

func newNodeTable() *nodeTable {
	return &nodeTable{index: map[string]int{}, ips: map[string]int{}}
}

// maxNodeIndex bounds the index so node and pod IPs stay inside 10.244.0.0/16
// and 172.30.0.0/16.
const maxNodeIndex = 250

func (t *nodeTable) indexOf(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i, ok := t.index[name]; ok {
		return i
	}
	i := t.next % maxNodeIndex
	t.next++
	t.index[name] = i
	return i
}

func (t *nodeTable) forget(name string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.index, name)
	delete(t.ips, name)
}

// nextPodIP hands out 10.244.<node>.<2..251>, wrapping: pods come and go,
// and a test pool never holds 250 pods on one node.
func (t *nodeTable) nextPodIP(node string) string {
	idx := t.indexOf(node)
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.ips[node]%250 + 1
	t.ips[node] = h
	return fmt.Sprintf("10.244.%d.%d", idx, h+1)
}

func (t *nodeTable) nodeIP(node string) string {
	return fmt.Sprintf("172.30.0.%d", t.indexOf(node)+2)
}

// registerNodes creates the profile's Nodes; one that already exists (a
// restarted simulator) is left as it is.
func registerNodes(ctx context.Context, cs kubernetes.Interface, p *Profile) (int, error) {
	created := 0
	for _, pl := range p.Pools {
		for i := 0; i < pl.Count; i++ {
			c, cancel := context.WithTimeout(ctx, apiTimeout)
			_, err := cs.CoreV1().Nodes().Create(c, newNode(pl, i), metav1.CreateOptions{})
			cancel()
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return created, fmt.Errorf("create node %s: %w", nodeName(pl, i), err)
			}
			created++
		}
	}
	return created, nil
}

// heartbeat writes a node's status (capacity, Ready and the pressure
// conditions, addresses) and renews its Lease, as a kubelet does.
func heartbeat(ctx context.Context, cs kubernetes.Interface, nodes *nodeTable, name string) error {
	if err := renewLease(ctx, cs, name); err != nil {
		return err
	}
	c, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	n, err := cs.CoreV1().Nodes().Get(c, name, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", name, err)
	}
	now := metav1.Now()
	capacity := capacityOf(n)
	n.Status.Capacity = capacity
	n.Status.Allocatable = capacity.DeepCopy()
	n.Status.Phase = corev1.NodeRunning
	n.Status.Addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: nodes.nodeIP(name)},
		{Type: corev1.NodeHostName, Address: name},
	}
	n.Status.NodeInfo = corev1.NodeSystemInfo{
		KubeletVersion: kubeletVersion, OperatingSystem: "linux", Architecture: "amd64",
		ContainerRuntimeVersion: "sim://1", OSImage: "inference-operator node simulator",
		KernelVersion: "sim", MachineID: name, SystemUUID: name, BootID: name,
	}
	n.Status.Conditions = []corev1.NodeCondition{
		cond(n, corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory", "kubelet has sufficient memory available", now),
		cond(n, corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure", "kubelet has no disk pressure", now),
		cond(n, corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID", "kubelet has sufficient PID available", now),
		cond(n, corev1.NodeReady, corev1.ConditionTrue, "KubeletReady", "simulated kubelet is posting ready status", now),
	}
	if _, err := cs.CoreV1().Nodes().UpdateStatus(c, n, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update status of node %s: %w", name, err)
	}
	return nil
}

// cond keeps lastTransitionTime while the status stays the same.
func cond(n *corev1.Node, t corev1.NodeConditionType, s corev1.ConditionStatus, reason, msg string, now metav1.Time) corev1.NodeCondition {
	since := now
	for _, c := range n.Status.Conditions {
		if c.Type == t && c.Status == s {
			since = c.LastTransitionTime
		}
	}
	return corev1.NodeCondition{Type: t, Status: s, Reason: reason, Message: msg,
		LastHeartbeatTime: now, LastTransitionTime: since}
}

// renewLease creates or renews the node's Lease in kube-node-lease, owned by
// the Node so the garbage collector removes it with the Node.
func renewLease(ctx context.Context, cs kubernetes.Interface, name string) error {
	c, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	leases := cs.CoordinationV1().Leases(leaseNamespace)
	now := metav1.NewMicroTime(time.Now())
	l, err := leases.Get(c, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		node, nerr := cs.CoreV1().Nodes().Get(c, name, metav1.GetOptions{})
		if nerr != nil {
			return fmt.Errorf("get node %s for its lease: %w", name, nerr)
		}
		l = &coordv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: leaseNamespace,
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: name, UID: node.UID}}},
			Spec: coordv1.LeaseSpec{HolderIdentity: ptr.To(name),
				LeaseDurationSeconds: ptr.To(int32(leaseDurationSeconds)), RenewTime: &now},
		}
		if _, err := leases.Create(c, l, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create lease %s/%s: %w", leaseNamespace, name, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("get lease %s/%s: %w", leaseNamespace, name, err)
	}
	l.Spec.HolderIdentity = ptr.To(name)
	l.Spec.LeaseDurationSeconds = ptr.To(int32(leaseDurationSeconds))
	l.Spec.RenewTime = &now
	if _, err := leases.Update(c, l, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("renew lease %s/%s: %w", leaseNamespace, name, err)
	}
	return nil
}
