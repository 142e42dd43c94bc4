package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

// Bounds on a profile: a test pool is small, and a typo should fail loudly
// rather than register thousands of nodes.
const (
	maxPools        = 32
	maxNodesPerPool = 64
	maxGPUsPerNode  = 16
	profileMaxBytes = 64 * 1024
)

// Labels and taint that GPU Feature Discovery and GPU node pools use.
const (
	labelGPUProduct = "nvidia.com/gpu.product"
	labelGPUCount   = "nvidia.com/gpu.count"
	labelGPUMemory  = "nvidia.com/gpu.memory"
	labelGPUFamily  = "nvidia.com/gpu.family"
	labelGPUPresent = "nvidia.com/gpu.present"
	resourceGPU     = corev1.ResourceName("nvidia.com/gpu")
	taintGPU        = "nvidia.com/gpu"
)

// Our own marks: which nodes this simulator runs, and their size.
const (
	labelSimulated = "sim.inference-operator.test/simulated"
	labelPool      = "sim.inference-operator.test/pool"
	annotCPU       = "sim.inference-operator.test/cpu"
	annotMemory    = "sim.inference-operator.test/memory"
	defaultCPU     = "32"
	defaultMemory  = "128Gi"
	maxPodsPerNode = 110
)

// Pool is one group of identical nodes in the profile file.
type Pool struct {
	Name         string `json:"name"`
	Count        int    `json:"count"`
	Product      string `json:"product,omitempty"`
	GPUs         int    `json:"gpus,omitempty"`
	GPUMemoryMiB int    `json:"gpuMemoryMiB,omitempty"`
	Family       string `json:"family,omitempty"`
	CPU          string `json:"cpu,omitempty"`
	Memory       string `json:"memory,omitempty"`
}

// Profile describes the whole simulated pool.
type Profile struct {
	Pools []Pool `json:"pools"`
}

var (
	poolNameRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	// GFD product strings: letters, digits, dashes, dots, underscores.
	productRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)
)

func loadProfile(path string) (*Profile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if st.Size() > profileMaxBytes {
		return nil, fmt.Errorf("profile %s: %d bytes, more than the %d allowed", path, st.Size(), profileMaxBytes)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	var p Profile
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	if err := p.validate(); err != nil {
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	return &p, nil
}

func (p *Profile) validate() error {
	if len(p.Pools) == 0 || len(p.Pools) > maxPools {
		return fmt.Errorf("pools: need 1 to %d pools, have %d", maxPools, len(p.Pools))
	}
	seen := map[string]bool{}
	for i, pl := range p.Pools {
		where := fmt.Sprintf("pools[%d]", i)
		if !poolNameRe.MatchString(pl.Name) {
			return fmt.Errorf("%s.name %q: use lower-case letters, digits and dashes (at most 32)", where, pl.Name)
		}
		if seen[pl.Name] {
			return fmt.Errorf("%s.name %q: used twice", where, pl.Name)
		}
		seen[pl.Name] = true
		if pl.Count < 0 || pl.Count > maxNodesPerPool {
			return fmt.Errorf("%s.count %d: must be between 0 and %d", where, pl.Count, maxNodesPerPool)
		}
		if pl.GPUs < 0 || pl.GPUs > maxGPUsPerNode {
			return fmt.Errorf("%s.gpus %d: must be between 0 and %d", where, pl.GPUs, maxGPUsPerNode)
		}
		if (pl.GPUs > 0) != (pl.Product != "") {
			return fmt.Errorf("%s: a GPU pool needs both product and gpus, a CPU pool neither", where)
		}
		if pl.Product != "" && !productRe.MatchString(pl.Product) {
			return fmt.Errorf("%s.product %q: not a valid label value", where, pl.Product)
		}
		if pl.Family != "" && !productRe.MatchString(pl.Family) {
			return fmt.Errorf("%s.family %q: not a valid label value", where, pl.Family)
		}
		if pl.GPUMemoryMiB < 0 {
			return fmt.Errorf("%s.gpuMemoryMiB %d: must not be negative", where, pl.GPUMemoryMiB)
		}
		for field, q := range map[string]string{"cpu": pl.CPU, "memory": pl.Memory} {
			if q == "" {
				continue
			}
			if _, err := resource.ParseQuantity(q); err != nil {
				return fmt.Errorf("%s.%s %q: %v", where, field, q, err)
			}
		}
	}
	return nil
}

// nodeName is the name of node i of pool pl.
func nodeName(pl Pool, i int) string { return fmt.Sprintf("sim-%s-%d", pl.Name, i) }

// newNode builds the Node object of node i of pool pl: labels, taint and
// the size annotations statusFor reads back.
func newNode(pl Pool, i int) *corev1.Node {
	name := nodeName(pl, i)
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				labelSimulated:           "true",
				labelPool:                pl.Name,
			},
			Annotations: map[string]string{},
		},
	}
	if pl.CPU != "" {
		n.Annotations[annotCPU] = pl.CPU
	}
	if pl.Memory != "" {
		n.Annotations[annotMemory] = pl.Memory
	}
	if pl.GPUs > 0 {
		n.Labels[labelGPUProduct] = pl.Product
		n.Labels[labelGPUCount] = strconv.Itoa(pl.GPUs)
		n.Labels[labelGPUPresent] = "true"
		if pl.GPUMemoryMiB > 0 {
			n.Labels[labelGPUMemory] = strconv.Itoa(pl.GPUMemoryMiB)
		}
		if pl.Family != "" {
			n.Labels[labelGPUFamily] = pl.Family
		}
		n.Spec.Taints = []corev1.Taint{{Key: taintGPU, Value: "present", Effect: corev1.TaintEffectNoSchedule}}
	}
	return n
}

// quantityOr parses s, or def when s is empty or invalid (a hand-made Node
// with a bad annotation gets the default size, and a log line).
func quantityOr(s, def, what, node string) resource.Quantity {
	if s != "" {
		q, err := resource.ParseQuantity(s)
		if err == nil {
			return q
		}
		logf("node %s: %s %q is not a quantity (%v); using %s", node, what, s, err, def)
	}
	return resource.MustParse(def)
}

// capacityOf derives a node's capacity from its labels and annotations, so
// a Node created by hand (kubectl) with the same marks is sized the same way.
func capacityOf(n *corev1.Node) corev1.ResourceList {
	rl := corev1.ResourceList{
		corev1.ResourceCPU:              quantityOr(n.Annotations[annotCPU], defaultCPU, "cpu", n.Name),
		corev1.ResourceMemory:           quantityOr(n.Annotations[annotMemory], defaultMemory, "memory", n.Name),
		corev1.ResourcePods:             *resource.NewQuantity(maxPodsPerNode, resource.DecimalSI),
		corev1.ResourceEphemeralStorage: resource.MustParse("500Gi"),
	}
	if c := n.Labels[labelGPUCount]; c != "" {
		g, err := strconv.Atoi(c)
		if err != nil || g < 0 || g > maxGPUsPerNode {
			logf("node %s: label %s=%q is not a GPU count between 0 and %d; no GPUs", n.Name, labelGPUCount, c, maxGPUsPerNode)
		} else {
			rl[resourceGPU] = *resource.NewQuantity(int64(g), resource.DecimalSI)
		}
	}
	return rl
}
