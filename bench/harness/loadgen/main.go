// Command loadgen is the benchmark's client: it creates N InferenceServices as
// fast as the API server takes them while watching InferenceServices,
// Deployments and Services, and reports when each object's Deployment, Service
// and first status appeared (local monotonic time of the watch events, the same
// method for every operator). `loadgen clean` deletes what a run left.
//
//	loadgen run   --kubeconfig F --namespaces a,b --n 1000 [--workers 8] [--timeout 15m] > result.json
//	loadgen clean --kubeconfig F --namespaces a,b
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

var isvcGVR = schema.GroupVersionResource{Group: "ai.example.com", Version: "v1", Resource: "inferenceservices"}

var gpus = []string{"A100", "H100", "L40S"}

type clients struct {
	kube *kubernetes.Clientset
	dyn  *dynamic.DynamicClient
}

func newClients(kubeconfig string) (*clients, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS = -1 // no client-side rate limit: as fast as the API server takes them
	cfg.UserAgent = "inference-operator-bench-loadgen"
	return clientsFor(cfg)
}

func clientsFor(cfg *rest.Config) (*clients, error) {
	k, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	d, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &clients{k, d}, nil
}

// obj is what the watches saw of one InferenceService, in seconds since start.
type obj struct {
	sent, created, added, deployment, service, status float64
}

type tracker struct {
	mu     sync.Mutex
	start  time.Time
	ns     map[string]bool
	objs   map[string]*obj
	n      int
	deps   int
	svcs   int
	stats  int
	done   chan struct{}
	closed bool
	events atomic.Int64
}

func (t *tracker) now() float64 { return time.Since(t.start).Seconds() }

func (t *tracker) get(key string) *obj {
	o := t.objs[key]
	if o == nil {
		o = &obj{sent: -1, created: -1, added: -1, deployment: -1, service: -1, status: -1}
		t.objs[key] = o
	}
	return o
}

func (t *tracker) check() {
	if !t.closed && t.deps >= t.n && t.stats >= t.n && t.svcs >= t.n {
		t.closed = true
		close(t.done)
	}
}

func (t *tracker) see(kind string, ns, name string, u *unstructured.Unstructured) {
	at := t.now()
	t.events.Add(1)
	if !t.ns[ns] {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.get(ns + "/" + name)
	switch kind {
	case "isvc":
		if o.added < 0 {
			o.added = at
		}
		if o.status < 0 && u != nil {
			if g, ok, _ := unstructured.NestedInt64(u.Object, "status", "observedGeneration"); ok && g >= 1 {
				o.status = at
				t.stats++
			}
		}
	case "deployment":
		if o.deployment < 0 {
			o.deployment = at
			t.deps++
		}
	case "service":
		if o.service < 0 {
			o.service = at
			t.svcs++
		}
	}
	t.check()
}

// watchLoop watches one resource cluster-wide from rv, re-establishing the
// watch from the last resourceVersion seen if the server closes it.
func watchLoop(ctx context.Context, kind string, rv string, open func(metav1.ListOptions) (watch.Interface, error), t *tracker) {
	for ctx.Err() == nil {
		w, err := open(metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true, TimeoutSeconds: ptr(int64(3600))})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			fmt.Fprintf(os.Stderr, "loadgen: watch %s: %v\n", kind, err)
			time.Sleep(200 * time.Millisecond)
			continue
		}
		for ev := range w.ResultChan() {
			if ev.Type == watch.Error {
				if ctx.Err() != nil {
					return
				}
				fmt.Fprintf(os.Stderr, "loadgen: watch %s error event: %v\n", kind, apierrors.FromObject(ev.Object))
				rv = "" // 410 Gone and the like: start over (we only miss nothing we need: first-seen times)
				break
			}
			m, err := metaOf(ev.Object)
			if err != nil {
				continue
			}
			rv = m.GetResourceVersion()
			if ev.Type == watch.Bookmark || ev.Type == watch.Deleted {
				continue
			}
			u, _ := ev.Object.(*unstructured.Unstructured)
			t.see(kind, m.GetNamespace(), m.GetName(), u)
		}
		w.Stop()
	}
}

func ptr[T any](v T) *T { return &v }

func metaOf(o any) (metav1.Object, error) {
	if m, ok := o.(metav1.Object); ok {
		return m, nil
	}
	return nil, fmt.Errorf("no metadata in %T", o)
}

func pct(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return -1
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	i := int(p/100*float64(len(s))+0.999999) - 1 // nearest rank
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func run(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	nsList := fs.String("namespaces", "", "comma-separated namespaces (created if missing); objects are spread across them")
	n := fs.Int("n", 1000, "InferenceServices to create")
	workers := fs.Int("workers", 8, "concurrent create requests")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up waiting for convergence after this")
	_ = fs.Parse(args)
	nss := strings.Split(*nsList, ",")
	if *nsList == "" || *n <= 0 {
		return fmt.Errorf("need --namespaces and --n > 0")
	}
	c, err := newClients(*kubeconfig)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, ns := range nss {
		_, err := c.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	t := &tracker{ns: map[string]bool{}, objs: map[string]*obj{}, n: *n, done: make(chan struct{})}
	for _, ns := range nss {
		t.ns[ns] = true
	}
	// Start the watches from the current resourceVersion of each resource.
	rvOf := func(list func() (string, error)) (string, error) { return list() }
	isvcRV, err := rvOf(func() (string, error) {
		l, err := c.dyn.Resource(isvcGVR).List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return "", err
		}
		return l.GetResourceVersion(), nil
	})
	if err != nil {
		return fmt.Errorf("list InferenceServices: %w", err)
	}
	depRV, err := rvOf(func() (string, error) {
		l, err := c.kube.AppsV1().Deployments("").List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return "", err
		}
		return l.ResourceVersion, nil
	})
	if err != nil {
		return err
	}
	svcRV, err := rvOf(func() (string, error) {
		l, err := c.kube.CoreV1().Services("").List(ctx, metav1.ListOptions{Limit: 1})
		if err != nil {
			return "", err
		}
		return l.ResourceVersion, nil
	})
	if err != nil {
		return err
	}
	t.start = time.Now()
	go watchLoop(ctx, "isvc", isvcRV, func(o metav1.ListOptions) (watch.Interface, error) {
		return c.dyn.Resource(isvcGVR).Watch(ctx, o)
	}, t)
	go watchLoop(ctx, "deployment", depRV, func(o metav1.ListOptions) (watch.Interface, error) {
		return c.kube.AppsV1().Deployments("").Watch(ctx, o)
	}, t)
	go watchLoop(ctx, "service", svcRV, func(o metav1.ListOptions) (watch.Interface, error) {
		return c.kube.CoreV1().Services("").Watch(ctx, o)
	}, t)
	time.Sleep(500 * time.Millisecond) // let the three watches open before the first create

	jobs := make(chan int)
	var wg sync.WaitGroup
	var failures atomic.Int64
	t.mu.Lock()
	t.start = time.Now() // time zero: the first create request
	t.mu.Unlock()
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				ns := nss[i%len(nss)]
				name := fmt.Sprintf("isvc-%05d", i)
				u := &unstructured.Unstructured{Object: map[string]any{
					"apiVersion": "ai.example.com/v1",
					"kind":       "InferenceService",
					"metadata":   map[string]any{"name": name, "namespace": ns},
					"spec": map[string]any{
						"model":        fmt.Sprintf("meta-llama/Llama-3.1-8B-Instruct-%d", i%7),
						"gpuType":      gpus[i%len(gpus)],
						"replicas":     int64(1),
						"maxBatchSize": int64(32),
					},
				}}
				sent := t.now()
				for attempt := 0; ; attempt++ {
					_, err := c.dyn.Resource(isvcGVR).Namespace(ns).Create(ctx, u, metav1.CreateOptions{})
					if err == nil || apierrors.IsAlreadyExists(err) {
						break
					}
					if attempt >= 20 {
						failures.Add(1)
						fmt.Fprintf(os.Stderr, "loadgen: create %s/%s: %v\n", ns, name, err)
						break
					}
					time.Sleep(time.Duration(50*(attempt+1)) * time.Millisecond)
				}
				done := t.now()
				t.mu.Lock()
				o := t.get(ns + "/" + name)
				o.sent, o.created = sent, done
				t.mu.Unlock()
			}
		}()
	}
	for i := 0; i < *n; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	createS := t.now()
	fmt.Fprintf(os.Stderr, "loadgen: %d created in %.2f s (%d failed)\n", *n, createS, failures.Load())

	timedOut := false
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	deadline := time.After(*timeout)
wait:
	for {
		select {
		case <-t.done:
			break wait
		case <-deadline:
			timedOut = true
			break wait
		case <-tick.C:
			t.mu.Lock()
			fmt.Fprintf(os.Stderr, "loadgen: %.0f s: %d deployments, %d services, %d statuses of %d\n", t.now(), t.deps, t.svcs, t.stats, t.n)
			t.mu.Unlock()
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var depLat, svcLat, statLat, createLat []float64
	var lastDep, lastStat, lastSvc float64
	for _, o := range t.objs {
		if o.sent < 0 {
			continue // not ours (should not happen: the namespaces are fresh)
		}
		createLat = append(createLat, o.created-o.sent)
		if o.added >= 0 && o.deployment >= 0 {
			depLat = append(depLat, o.deployment-o.added)
		}
		if o.added >= 0 && o.service >= 0 {
			svcLat = append(svcLat, o.service-o.added)
		}
		if o.added >= 0 && o.status >= 0 {
			statLat = append(statLat, o.status-o.added)
		}
		lastDep = max(lastDep, o.deployment)
		lastSvc = max(lastSvc, o.service)
		lastStat = max(lastStat, o.status)
	}
	ms := func(xs []float64, p float64) float64 { return pct(xs, p) * 1000 }
	res := map[string]any{
		"n":                     *n,
		"namespaces":            nss,
		"workers":               *workers,
		"create_failures":       failures.Load(),
		"create_seconds":        createS,
		"create_rate_per_s":     float64(*n) / createS,
		"create_request_p50_ms": ms(createLat, 50),
		"create_request_p99_ms": ms(createLat, 99),
		"timed_out":             timedOut,
		"deployments_seen":      t.deps,
		"services_seen":         t.svcs,
		"statuses_seen":         t.stats,
		"all_deployments_s":     lastDep,
		"all_services_s":        lastSvc,
		"all_statuses_s":        lastStat,
		"convergence_s":         convergence(timedOut, max(lastDep, lastStat, lastSvc)),
		"deployment_latency_ms": map[string]float64{"p50": ms(depLat, 50), "p90": ms(depLat, 90), "p99": ms(depLat, 99), "max": ms(depLat, 100)},
		"service_latency_ms":    map[string]float64{"p50": ms(svcLat, 50), "p99": ms(svcLat, 99)},
		"status_latency_ms":     map[string]float64{"p50": ms(statLat, 50), "p90": ms(statLat, 90), "p99": ms(statLat, 99), "max": ms(statLat, 100)},
		"watch_events":          t.events.Load(),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return err
	}
	if timedOut {
		return fmt.Errorf("not converged after %s", *timeout)
	}
	return nil
}

// convergence is the time of the last object seen, or null when not all were seen.
func convergence(timedOut bool, last float64) any {
	if timedOut {
		return nil
	}
	return last
}

// retry calls f until it succeeds, fails with an error that is not a server
// timeout or overload, or 10 minutes pass (an overloaded API server may still
// be working through an earlier operator's requests).
func retry(what string, f func() error) error {
	deadline := time.Now().Add(10 * time.Minute)
	for {
		err := f()
		if err == nil || !(apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
			apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err)) || time.Now().After(deadline) {
			return err
		}
		fmt.Fprintf(os.Stderr, "loadgen: %s: %v; retrying\n", what, err)
		time.Sleep(2 * time.Second)
	}
}

// clean deletes the InferenceServices, Deployments, Services and Events of the
// namespaces (there is no garbage collector or namespace controller in the
// benchmark's control plane), and waits until they are gone.
func clean(args []string) error {
	fs := flag.NewFlagSet("clean", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", os.Getenv("KUBECONFIG"), "kubeconfig file")
	nsList := fs.String("namespaces", "", "comma-separated namespaces")
	workers := fs.Int("workers", 8, "concurrent delete requests where a collection delete is not supported")
	_ = fs.Parse(args)
	c, err := newClients(*kubeconfig)
	if err != nil {
		return err
	}
	ctx := context.Background()
	type res struct {
		name string
		ri   dynamic.NamespaceableResourceInterface
	}
	kinds := []res{
		{"inferenceservices", c.dyn.Resource(isvcGVR)},
		{"deployments", c.dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"})},
		{"services", c.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "services"})},
		{"events", c.dyn.Resource(schema.GroupVersionResource{Group: "events.k8s.io", Version: "v1", Resource: "events"})},
	}
	start := time.Now()
	for _, ns := range strings.Split(*nsList, ",") {
		for _, k := range kinds {
			ri := k.ri.Namespace(ns)
			err := retry("delete "+k.name+" in "+ns, func() error {
				return ri.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
			})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil && !apierrors.IsMethodNotSupported(err) {
				return fmt.Errorf("delete %s in %s: %w", k.name, ns, err)
			}
			for {
				var l *unstructured.UnstructuredList
				err := retry("list "+k.name+" in "+ns, func() (err error) {
					l, err = ri.List(ctx, metav1.ListOptions{})
					return err
				})
				if err != nil {
					return fmt.Errorf("list %s in %s: %w", k.name, ns, err)
				}
				if len(l.Items) == 0 {
					break
				}
				names := make(chan string)
				var wg sync.WaitGroup
				for w := 0; w < *workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for name := range names {
							if err := ri.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
								fmt.Fprintf(os.Stderr, "loadgen: delete %s %s/%s: %v\n", k.name, ns, name, err)
							}
						}
					}()
				}
				for _, it := range l.Items {
					if len(it.GetFinalizers()) > 0 {
						_, _ = ri.Patch(ctx, it.GetName(), "application/merge-patch+json", []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
					}
					names <- it.GetName()
				}
				close(names)
				wg.Wait()
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
	fmt.Fprintf(os.Stderr, "loadgen: cleaned %s in %.1f s\n", *nsList, time.Since(start).Seconds())
	return nil
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: loadgen run|clean [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(os.Args[2:])
	case "clean":
		err = clean(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
