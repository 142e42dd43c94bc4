// nodesim: a small kubelet stand-in for tests. It registers the Nodes of a
// GPU pool profile (GPU Feature Discovery labels, nvidia.com/gpu capacity,
// the GPU NoSchedule taint), keeps their Leases and Ready condition fresh,
// and runs the pods the scheduler binds to them: Running and Ready after
// --ready-delay, or crash-looping on demand. Graceful pod deletions finish
// at once. Any Node labelled sim.inference-operator.test/simulated=true is
// run the same way, so a test can add capacity with kubectl.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
)

const (
	maxWorkers     = 16
	syncTimeout    = 60 * time.Second
	clientQPS      = 50
	clientBurst    = 100
	maxDelay       = 10 * time.Minute
	minHeartbeat   = time.Second
	minCrashPeriod = time.Second
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s nodesim: %s\n", time.Now().UTC().Format(time.RFC3339Nano), fmt.Sprintf(format, args...))
}

type options struct {
	kubeconfig, profile, readyFile, crashPrefix string
	readyDelay, readyJitter, crashInterval      time.Duration
	heartbeat                                   time.Duration
	workers                                     int
}

func parseFlags() (*options, error) {
	o := &options{}
	flag.StringVar(&o.kubeconfig, "kubeconfig", "", "kubeconfig of the API server (required)")
	flag.StringVar(&o.profile, "profile", "", "pool profile YAML (required; see tests/cluster/profiles/)")
	flag.StringVar(&o.readyFile, "ready-file", "", "written once every profile node has posted its first status")
	flag.StringVar(&o.crashPrefix, "crashloop-model-prefix", "sim-crashloop/", "pods serving a model with this prefix crash-loop (empty: off)")
	flag.DurationVar(&o.readyDelay, "ready-delay", 2*time.Second, "time from binding to Running/Ready")
	flag.DurationVar(&o.readyJitter, "ready-jitter", 3*time.Second, "up to this much more per pod (fixed by its UID)")
	flag.DurationVar(&o.crashInterval, "crash-interval", 5*time.Second, "time between restarts of a crash-looping container")
	flag.DurationVar(&o.heartbeat, "heartbeat", 10*time.Second, "node status and lease renewal period")
	flag.IntVar(&o.workers, "workers", 4, "pod workers")
	flag.Parse()
	switch {
	case flag.NArg() > 0:
		return nil, fmt.Errorf("unexpected arguments %v", flag.Args())
	case o.kubeconfig == "" || o.profile == "":
		return nil, fmt.Errorf("--kubeconfig and --profile are required")
	case o.readyDelay < 0 || o.readyDelay > maxDelay:
		return nil, fmt.Errorf("--ready-delay must be between 0 and %s", maxDelay)
	case o.readyJitter < 0 || o.readyJitter > maxDelay:
		return nil, fmt.Errorf("--ready-jitter must be between 0 and %s", maxDelay)
	case o.crashInterval < minCrashPeriod || o.crashInterval > maxDelay:
		return nil, fmt.Errorf("--crash-interval must be between %s and %s", minCrashPeriod, maxDelay)
	case o.heartbeat < minHeartbeat || o.heartbeat > maxDelay:
		return nil, fmt.Errorf("--heartbeat must be between %s and %s", minHeartbeat, maxDelay)
	case o.workers < 1 || o.workers > maxWorkers:
		return nil, fmt.Errorf("--workers must be between 1 and %d", maxWorkers)
	}
	return o, nil
}

func main() {
	o, err := parseFlags()
	if err != nil {
		logf("%v", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		logf("%v", err)
		os.Exit(1)
	}
}

func run(o *options) error {
	prof, err := loadProfile(o.profile)
	if err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", o.kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", o.kubeconfig, err)
	}
	cfg.QPS, cfg.Burst, cfg.UserAgent = clientQPS, clientBurst, "nodesim"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("client: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	created, err := registerNodes(ctx, cs, prof)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	for _, pl := range prof.Pools {
		for i := 0; i < pl.Count; i++ {
			want[nodeName(pl, i)] = true
		}
	}
	logf("profile %s: %d nodes (%d created)", o.profile, len(want), created)

	nodeInf := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.LabelSelector = labels.Set{labelSimulated: "true"}.String()
		}))
	podInf := informers.NewSharedInformerFactoryWithOptions(cs, 0,
		informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
			lo.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	nodeLister := nodeInf.Core().V1().Nodes().Lister()
	podIndexer := podInf.Core().V1().Pods().Informer().GetIndexer()
	nodeQ := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	podQ := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	defer nodeQ.ShutDown()
	defer podQ.ShutDown()
	table := newNodeTable()

	enqueuePod := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			podQ.Add(key)
		}
	}
	if _, err := podInf.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueuePod, UpdateFunc: func(_, n any) { enqueuePod(n) },
	}); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	if _, err := nodeInf.Core().V1().Nodes().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			n, ok := obj.(*corev1.Node)
			if !ok {
				return
			}
			nodeQ.Add(n.Name)
			// Pods bound before this node was seen were skipped: look again.
			for _, p := range podIndexer.List() {
				if pod, ok := p.(*corev1.Pod); ok && pod.Spec.NodeName == n.Name {
					enqueuePod(pod)
				}
			}
		},
		DeleteFunc: func(obj any) {
			if n, ok := obj.(*corev1.Node); ok {
				table.forget(n.Name)
			} else if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				table.forget(t.Key)
			}
		},
	}); err != nil {
		return fmt.Errorf("node informer: %w", err)
	}
	nodeInf.Start(ctx.Done())
	podInf.Start(ctx.Done())
	syncCtx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	for typ, ok := range nodeInf.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("node cache (%v) not synced within %s", typ, syncTimeout)
		}
	}
	for typ, ok := range podInf.WaitForCacheSync(syncCtx.Done()) {
		if !ok {
			return fmt.Errorf("pod cache (%v) not synced within %s", typ, syncTimeout)
		}
	}

	// Nodes: one worker; every heartbeat period every node is queued again.
	var pending atomic.Int64
	pending.Store(int64(len(want)))
	posted := map[string]bool{}
	go func() {
		for {
			name, quit := nodeQ.Get()
			if quit {
				return
			}
			if _, err := nodeLister.Get(name); err != nil {
				nodeQ.Forget(name)
				nodeQ.Done(name)
				continue
			}
			if err := heartbeat(ctx, cs, table, name); err != nil {
				logf("%v", err)
				nodeQ.AddRateLimited(name)
			} else {
				nodeQ.Forget(name)
				if want[name] && !posted[name] {
					posted[name] = true
					if pending.Add(-1) == 0 && o.readyFile != "" {
						writeReady(o.readyFile, len(want))
					}
				}
			}
			nodeQ.Done(name)
		}
	}()
	if len(want) == 0 && o.readyFile != "" {
		writeReady(o.readyFile, 0)
	}
	go func() {
		t := time.NewTicker(o.heartbeat)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				ns, err := nodeLister.List(labels.Everything())
				if err != nil {
					logf("list nodes: %v", err)
					continue
				}
				for _, n := range ns {
					nodeQ.Add(n.Name)
				}
			}
		}
	}()

	sim := &podSim{cs: cs, nodes: table, readyDelay: o.readyDelay, readyJitter: o.readyJitter, crashInterval: o.crashInterval, crashPrefix: o.crashPrefix}
	for i := 0; i < o.workers; i++ {
		go func() {
			for {
				key, quit := podQ.Get()
				if quit {
					return
				}
				podWork(ctx, sim, nodeLister, podIndexer, podQ, key)
				podQ.Done(key)
			}
		}()
	}
	logf("running: ready delay %s (+ up to %s), crash interval %s, heartbeat %s", o.readyDelay, o.readyJitter, o.crashInterval, o.heartbeat)
	<-ctx.Done()
	logf("stopping")
	return nil
}

func podWork(ctx context.Context, sim *podSim, nodes interface {
	Get(string) (*corev1.Node, error)
}, idx cache.Indexer, q workqueue.TypedRateLimitingInterface[string], key string) {
	obj, exists, err := idx.GetByKey(key)
	if err != nil || !exists {
		q.Forget(key)
		return
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		q.Forget(key)
		return
	}
	if _, err := nodes.Get(p.Spec.NodeName); err != nil {
		q.Forget(key) // not one of ours (or not seen yet: the node's Add looks again)
		return
	}
	after, err := sim.sync(ctx, p)
	if err != nil {
		logf("%v", err)
		q.AddRateLimited(key)
		return
	}
	q.Forget(key)
	if after > 0 {
		q.AddAfter(key, after)
	}
}

// writeReady tells up.sh that every profile node has posted a status.
func writeReady(path string, n int) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprintf("nodes=%d\n", n)), 0o644); err != nil {
		logf("ready file: %v", err)
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		logf("ready file: %v", err)
		return
	}
	logf("all %d profile nodes have posted their status", n)
}
