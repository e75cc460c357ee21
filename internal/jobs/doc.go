// Package jobs is OpenCashier's durable outbox and worker pool.
//
// A job is a row in the jobs table of the application's own database.
// Domain code enqueues it with Enqueue inside the transaction that makes the
// change the job must act on (book money, then push the balance), so the job
// exists exactly when the change commits. Runners claim due jobs, run the
// handler registered for the job's kind, and record the outcome. Delivery is
// at least once: a handler may run again for the same job after a crash, a
// lost lease or a failure to record its outcome, so handlers must be
// idempotent or, like the balance push, detect an earlier attempt by the
// external id they send (every external call carries our own id).
//
// # States
//
//	Enqueue ─▶ queued ──claim──▶ running ──handler returned nil──▶ done ──Purge──▶ (deleted)
//	             ▲  ▲                │  │ ▲
//	             │  └──failure with──┘  │ └── lease ended with attempts left: claimed again
//	             │     attempts left,   │
//	             │     or release       │
//	             └──Requeue── dead ◀────┘ Permanent, last attempt failed, or last lease ended
//
// Every transition:
//
//	from     event                                                       to
//	–        Enqueue (attempt 0)                                         queued
//	queued   claimed once due: attempt+1, new lease and claim token      running
//	running  handler returned nil                                        done
//	running  handler failed or panicked, attempts left: due after        queued
//	         backoff, or after the delay asked with Retry
//	running  handler returned Permanent, or failed on its last attempt   dead
//	running  lease ended, attempts left: claimed again, attempt+1        running
//	running  lease ended on the last attempt: the next claim ends it     dead
//	running  shutdown: released, due at once, attempt not counted        queued
//	dead     Requeue: attempt reset to 0, due at once                    queued
//	done     Purge, or Options.Retention in Run                          deleted
//
// queued: waiting. due_at holds the time it becomes due; 0 means as soon as
// possible (Enqueue without RunAt, or a release at shutdown), which is due
// whatever a runner's clock says and is claimed before jobs scheduled for a
// time. Jobs are claimed in order of due_at, then id (creation order).
//
// running: claimed by one run. due_at holds the end of the lease
// (Clock.Now()+Lease at the claim), renewed by a heartbeat while the handler
// runs; claim_token identifies the claim. Each claim counts an attempt.
// When a lease ends without an outcome (the worker died or hung), the job is
// due again and the next claim takes it with a new token, storing "lease of
// worker … ended" as its last error; if that was the last attempt, the job
// goes dead instead.
//
// done: the handler returned nil. dead: the handler returned Permanent, or
// the last attempt failed (including a panic, which counts as a failure) or
// lost its lease. The last error text and the attempt count are kept in
// every state.
//
// Every outcome (done, retry, dead, release, lease renewal) is written with
// "WHERE id = ? AND claim_token = ? AND state = 'running'": a run whose lease
// ended and whose job another run has claimed cannot overwrite the newer
// run's result; its outcome is discarded and counted in
// jobs_lease_lost_total.
//
// "done" outcomes, the common case, are written in groups: a runner's first
// completion goes to the database at once, in its own transaction, and the
// completions of jobs that finish while that write is in flight wait for it
// and are then written together by the next transaction (one UPDATE per 200
// jobs, each row still guarded by its own claim token; RETURNING id tells
// which were kept). No timer delays a write, so a lone job finishes as
// quickly as before, and a burst costs a few transactions instead of one
// per job. A handler's run ends only once its outcome is recorded, so
// RunOnce, and Run at shutdown, return with every outcome written. If a
// group's write fails, the failure is logged for each of its jobs, which
// stay running and run again when their leases end. Retries, dead letters,
// releases and renewals are written one job per transaction.
//
// # Claiming
//
// One statement claims a batch: UPDATE jobs SET … WHERE id IN (SELECT id …
// ORDER BY due_at, id LIMIT n) RETURNING …. On PostgreSQL the SELECT takes
// FOR UPDATE SKIP LOCKED, so concurrent runners take disjoint batches
// without waiting; on SQLite the statement runs under BEGIN IMMEDIATE, which
// serializes writers. A runner claims only kinds it has handlers for.
// Instants come from Options.Clock and are stored as microseconds, so tests
// move a fake clock instead of sleeping.
//
// # Failures and backoff
//
// A failed attempt n (1-based) is retried after a uniformly random delay in
// [0, min(BackoffMax, BackoffBase·2^(n-1))] ("full jitter"), unless the
// handler returned Retry(after, err), which sets the delay itself. Retry
// still counts the attempt. After MaxAttempts attempts the job is dead.
// Dead jobs stay until an operator calls Requeue (fresh attempts) and are
// visible through List, Stats and the jobs_dead gauge.
//
// # Deduplication and retention
//
// A NewJob with a DedupKey is enqueued at most once per kind and key for as
// long as a row with that key exists, whatever its state. Done jobs are kept
// (with finished_at) so they stay visible and keep their dedup keys; with
// Options.Retention set, Run deletes done jobs older than that, in batches
// of 1,000 every StatsInterval, after which their keys are free again. Purge
// does the same on demand. Dead jobs are never deleted automatically.
//
// # Shutdown
//
// When Run's context is cancelled it stops claiming and waits up to
// ShutdownGrace for running handlers. Then it cancels their contexts; each
// job whose handler returns without success is released: queued, due at
// once, its attempt not counted, so another runner takes it promptly. Run
// waits 5 seconds more for handlers that ignore cancellation and then
// returns an error; their leases end by themselves.
//
// Notify wakes the local runner at once; other processes find new jobs at
// their next poll (PollInterval).
//
// # Metrics
//
// With Options.Registerer set, a runner exports:
//
//	jobs_queued{kind}            gauge: queued jobs in the database, refreshed every StatsInterval
//	jobs_dead{kind}              gauge: dead jobs in the database, refreshed every StatsInterval
//	jobs_running{kind}           gauge: handlers running in this process
//	jobs_done_total{kind}        counter: jobs this process completed
//	jobs_retried_total{kind}     counter: failed attempts scheduled for another attempt
//	jobs_dead_total{kind}        counter: jobs this process moved to dead
//	jobs_lease_lost_total{kind}  counter: runs whose outcome was discarded because the lease had passed on
//	job_duration_seconds{kind}   histogram: wall-clock handler duration
package jobs
