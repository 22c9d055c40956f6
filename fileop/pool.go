package fileop

import (
	"context"
	"sync"
)

// job is one task of a batch, queued for a local worker.
type job struct {
	batch int64
	op    Op
	task  Task
}

// workerPool is what the backends that run operations in this process
// (native, gfal2) share: a queue of tasks and a fixed number of workers.
// Submit only queues; Run's workers do the work and report each result.
type workerPool struct {
	queue   chan job
	workers int
}

func newWorkerPool(workers int) workerPool {
	return workerPool{queue: make(chan job, 1<<16), workers: workers}
}

// submit queues every task of b (the daemon bounds what is in flight, so
// the queue's capacity is never the limit in practice).
func (p *workerPool) submit(ctx context.Context, b Batch) (string, error) {
	for _, t := range b.Tasks {
		select {
		case p.queue <- job{batch: b.ID, op: b.Op, task: t}:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return "", nil
}

// run starts the workers and waits for them. On ctx end, operations in
// progress are cancelled and not reported: their subscriptions stay inbatch
// and are resumed by the next daemon.
func (p *workerPool) run(ctx context.Context, do func(context.Context, job) Result, report func(Result)) error {
	var wg sync.WaitGroup
	for i := 0; i < p.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case j := <-p.queue:
					r := do(ctx, j)
					if ctx.Err() != nil {
						return
					}
					report(r)
				}
			}
		}()
	}
	wg.Wait()
	// Tasks still queued belong to batches that stay inbatch: the next
	// run resumes them from the database, so they must not run twice.
	for {
		select {
		case <-p.queue:
		default:
			return nil
		}
	}
}
