using System.Diagnostics;
using ActorPool.Configuration;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;
using Akka.Event;

namespace ActorPool.Coordination;

/// <summary>
/// The pool's coordinator: owns the workers (its round-robin routees), the queue of chunks and the ledger of
/// what each worker holds.
/// <code>
///  caller ──StartCall/SubmitChunk──▶ pending FIFO ──RunChunk (window per worker)──▶ worker ──ChunkDone──┐
///    ▲                                   ▲                                                            │
///    └──────── ICallSink ◀── ledger ◀────┴── requeue (attempts ≤ retries) ◀── WorkerExited/Terminated ◀┘
/// </code>
/// A worker is sent a chunk only while it holds fewer than the call's window (1 until tasks are measured to be
/// much shorter than a round trip), so a long task never has short ones queued behind it. A chunk's result is
/// accepted once: a late or duplicate <see cref="ChunkDone"/> is dropped.
/// </summary>
internal sealed class Coordinator : ReceiveActor, IWithTimers
{
    public const string Name = "actorpool-coordinator";

    private readonly PoolSettings _settings;
    private readonly IWorkerLauncher _launcher;
    private readonly string _secret;
    private readonly byte[] _initializer;
    private readonly ILoggingAdapter _log = Context.GetLogger();

    private readonly Dictionary<string, WorkerHandle> _workers = new();
    private readonly Dictionary<IActorRef, WorkerHandle> _byRef = new();
    private readonly List<WorkerHandle> _routees = new();
    private int _next;

    private readonly Dictionary<long, CallEntry> _calls = new();
    private readonly Dictionary<ChunkId, ChunkEntry> _chunks = new();
    private readonly LinkedList<ChunkId> _pending = new();

    private int _launchCounter;
    private int _consecutiveStartFailures;
    private string? _brokenReason;
    private bool _stopping;
    private long _lastProgress = Stopwatch.GetTimestamp();
    private readonly List<IActorRef> _readyWaiters = new();
    private readonly List<IActorRef> _idleWaiters = new();
    private readonly List<IActorRef> _stopWaiters = new();

    public ITimerScheduler Timers { get; set; } = null!;

    public Coordinator(PoolSettings settings, IWorkerLauncher launcher, string secret, byte[] initializer)
    {
        _settings = settings;
        _launcher = launcher;
        _secret = secret;
        _initializer = initializer;
        _refusals = new PeerRefusals(_log, TimeSpan.FromSeconds(10));

        Receive<StartCall>(OnStartCall);
        Receive<SubmitChunk>(OnSubmitChunk);
        Receive<EndCall>(OnEndCall);
        Receive<ChunkDone>(m => OnResults(_byRef.GetValueOrDefault(Sender), m));
        Receive<ChunksDone>(m => OnResults(_byRef.GetValueOrDefault(Sender), m.Results));
        Receive<DataLinkOpened>(OnDataLinkOpened);
        Receive<DataLinkRefused>(m => _refusals.Refused("the data link", $"a connection (worker id '{m.WorkerId ?? "none given"}')", "it does not hold this pool's secret"));
        Receive<FromWorker>(OnFromWorker);
        Receive<DispatchNow>(_ =>
        {
            _dispatchRequested = false;
            Dispatch();
        });

        Receive<RegisterWorker>(OnRegister);
        Receive<WorkerReady>(OnWorkerReady);
        Receive<WorkerDraining>(m =>
        {
            if (_byRef.TryGetValue(Sender, out var w))
                Drain(w, "its node is leaving");
            Sender.Tell(DrainAck.Instance);
        });
        Receive<WorkerInitFailed>(OnWorkerInitFailed);
        Receive<WorkerLaunched>(OnWorkerLaunched);
        Receive<WorkerLaunchFailed>(m => OnWorkerGone(m.WorkerId, null, m.Reason));
        Receive<WorkerExited>(m => OnWorkerGone(m.WorkerId, m.ExitCode, m.ErrorTail));
        Receive<WorkerStartupTimedOut>(OnStartupTimedOut);
        Receive<Terminated>(m =>
        {
            if (_byRef.TryGetValue(m.ActorRef, out var w))
                OnWorkerGone(w.Id, null, w.Node is null ? "" : "its worker actor stopped, or its node is gone");
        });

        Receive<WaitForWorkers>(_ => { _readyWaiters.Add(Sender); ReplyWaiters(); });
        Receive<GetCounts>(_ => Sender.Tell(Status()));
        Receive<GetPoolStatus>(_ => Sender.Tell(Snapshot()));
        Receive<StatusRequest>(OnStatusRequest);
        Receive<InputEnded>(m =>
        {
            if (_calls.TryGetValue(m.CallId, out var call))
                call.Total = m.TotalTasks;
        });
        Receive<WaitForIdle>(_ =>
        {
            _idleWaiters.Add(Sender);
            Timers.StartPeriodicTimer("idle-check", IdleCheck.Instance, TimeSpan.FromMilliseconds(250));
            ReplyWaiters();
        });
        Receive<IdleCheck>(_ => ReplyWaiters());
        Receive<StopWorkers>(_ => OnStopWorkers());
        Receive<Akka.Cluster.ClusterEvent.IMemberEvent>(OnMemberEvent);
        Receive<Akka.Cluster.ClusterEvent.CurrentClusterState>(_ => { });
        Receive<SelfRemoved>(_ => LostCluster("removed from its cluster"));
        Receive<TerminateWorkers>(_ => OnTerminate());
    }

    private readonly PeerRefusals _refusals;
    private readonly Challenges _challenges = new();

    /// <summary>
    /// The gate in front of every receive: a message from another process is handled only when it is one a peer may
    /// send (a registration, a status request), or a worker's message from that registered worker. Everything else
    /// (calls, chunks, shutdown, counts and status, launcher reports) only ever comes from this process; from elsewhere
    /// it is dropped, and logged once per peer and interval.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        if (Sender.Path.Address.HasLocalScope || message is Terminated)
            return base.AroundReceive(receive, message);
        var why = message switch
        {
            RegisterWorker or StatusRequest => null,
            WorkerReady m => FromWorker(m.WorkerId),
            WorkerInitFailed m => FromWorker(m.WorkerId),
            WorkerDraining m => FromWorker(m.WorkerId),
            ChunkDone or ChunksDone => _byRef.ContainsKey(Sender) ? null : "its sender is not a worker of this pool",
            _ => "only the pool's own process may send it",
        };
        if (why is null)
            return base.AroundReceive(receive, message);
        _refusals.Refused(Sender.Path.Address.ToString(), $"a {message.GetType().Name}", why);
        return true;
    }

    private string? FromWorker(string workerId) =>
        _byRef.TryGetValue(Sender, out var w) && w.Id == workerId ? null : $"it does not come from the registered worker '{workerId}'";

    public static Props Props(PoolSettings settings, IWorkerLauncher launcher, string secret, byte[] initializer) =>
        Akka.Actor.Props.Create(() => new Coordinator(settings, launcher, secret, initializer));

    protected override void PreStart()
    {
        for (var i = 0; i < _settings.LocalWorkers; i++)
            LaunchWorker(slot: i + 1, restarts: 0);
        if (_settings.Cluster is not null)
        {
            var cluster = Akka.Cluster.Cluster.Get(Context.System);
            cluster.Subscribe(Self, Akka.Cluster.ClusterEvent.SubscriptionInitialStateMode.InitialStateAsEvents,
                typeof(Akka.Cluster.ClusterEvent.IMemberEvent));
            var self = Self;
            cluster.RegisterOnMemberRemoved(() => self.Tell(SelfRemoved.Instance));
        }
    }

    protected override void PostStop()
    {
        if (_settings.Cluster is not null)
            Akka.Cluster.Cluster.Get(Context.System).Unsubscribe(Self);
        ReportGauges(gone: true);
        // The ActorSystem is going away: no worker may outlive it, and no call may wait on it.
        foreach (var w in _workers.Values)
            _launcher.Kill(w.Id);
        FailAllCalls(new ObjectDisposedException(nameof(Pool), "The pool was terminated while this call was running."));
    }

    private void FailAllCalls(Exception error)
    {
        foreach (var call in _calls.Values)
            call.Sink.CallFailed(error);
        _calls.Clear();
        _chunks.Clear();
        _pending.Clear();
    }

    private PoolCounts Status() =>
        new(_routees.Count, _workers.Count, _calls.Count, _brokenReason, _byRef.Count);

    /// <summary>The pool as users see it (<see cref="ActorPool.PoolStatus"/>): workers by slot, then calls, oldest first.</summary>
    private ActorPool.PoolStatus Snapshot()
    {
        var now = Stopwatch.GetTimestamp();
        var workers = _workers.Values.OrderBy(w => w.Slot == 0 ? int.MaxValue : w.Slot).ThenBy(w => w.Id, StringComparer.Ordinal).Select(w =>
        {
            var oldest = w.Running.Select(id => _chunks.GetValueOrDefault(id)).Where(c => c is not null && c.Worker == w).MinBy(c => c!.DispatchedAt);
            var task = oldest is null ? null
                : new RunningTask(oldest.Id.CallId, oldest.FirstIndex, oldest.Count, oldest.Attempts, Stopwatch.GetElapsedTime(oldest.DispatchedAt, now));
            var state = w.State;
            return new WorkerStatus(w.Id, w.Slot, w.Pid, w.Host, w.Node is null ? _settings.StartMethod : "node", state, task, w.Running.Count, w.ItemsDone, w.Restarts);
        }).ToList();
        var queued = _pending.GroupBy(id => id.CallId).ToDictionary(g => g.Key, g => g.Count());
        var calls = _calls.Values.Where(c => c.Id != WarmUpChunk.CallId).OrderBy(c => c.StartedAt).Select(c =>
        {
            var waiting = queued.GetValueOrDefault(c.Id);
            var running = _chunks.Values.Count(x => x.Call == c && x.Worker is not null);
            return new CallStatus(c.Id, c.Completed, c.Total, c.Failed, c.Retried, waiting, running, Stopwatch.GetElapsedTime(c.StartedAt, now));
        }).ToList();
        var address = ((ExtendedActorSystem)Context.System).Provider.DefaultAddress;
        return new ActorPool.PoolStatus(_stopping ? PoolState.Closed : PoolState.Running, _settings.StartMethod, _settings.Processes,
            Self.Path.ToStringWithAddress(address), workers, calls, _brokenReason, DateTimeOffset.UtcNow);
    }

    /// <summary>A status request from another process (the node program's status command): it must hold a secret of the pool's.</summary>
    private void OnStatusRequest(StatusRequest m)
    {
        var secret = _settings.Cluster?.Secret ?? _secret;
        var key = "status|" + m.ClientNonce;
        if (m.Proof.Length == 0)
        {
            var nonce = Proof.NewNonce();
            _challenges.Add(key, nonce, secret);
            Sender.Tell(new StatusChallenge(nonce, Proof.Of(secret, "coordinator", "status", m.ClientNonce, nonce)));
            return;
        }
        if (_challenges.Take(key, m.ChallengeNonce) is not { } proven)
            return; // not a challenge of ours (or answered already)
        if (!Proof.Matches(Proof.Of(proven, "client", "status", m.ChallengeNonce, m.ClientNonce), m.Proof))
        {
            _refusals.Refused(Sender.Path.Address.ToString(), "a status request", "it does not hold this pool's secret");
            Sender.Tell(new StatusReply(null, "wrong pool secret"));
            return;
        }
        Sender.Tell(new StatusReply(Snapshot(), null));
    }

    // ------------------------------------------------------------------ calls

    private void OnStartCall(StartCall m)
    {
        if (_brokenReason is not null)
        {
            m.Sink.CallFailed(new PoolBrokenException(_brokenReason));
            return;
        }
        if (_stopping)
        {
            m.Sink.CallFailed(new ObjectDisposedException(nameof(Pool), "The pool was closed before this call started."));
            return;
        }
        _calls[m.CallId] = new CallEntry(m.CallId, m.Function, m.Sink, m.GangSize) { SoftMs = m.SoftMs, HardMs = m.HardMs, Total = m.TotalTasks, TraceParent = m.TraceParent };
    }

    private void OnSubmitChunk(SubmitChunk m)
    {
        if (!_calls.TryGetValue(m.Chunk.CallId, out var call) || _chunks.ContainsKey(m.Chunk))
            return; // ended or failed already
        _lastProgress = Stopwatch.GetTimestamp();
        _chunks[m.Chunk] = new ChunkEntry(m.Chunk, m.Items, m.FirstIndex, m.Count, call);
        call.Submitted++;
        Diagnostics.PoolMetrics.TasksSubmitted.Add(m.Count);
        _pending.AddLast(m.Chunk);
        RequestDispatch();
    }

    private void OnEndCall(EndCall m)
    {
        if (!_calls.Remove(m.CallId, out var call))
            return;
        // Drop what is still queued; what is running finishes and its result is dropped.
        for (var node = _pending.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.CallId == m.CallId)
                _pending.Remove(node);
            node = next;
        }
        foreach (var id in _chunks.Keys.Where(k => k.CallId == m.CallId).ToList())
            _chunks.Remove(id);
        foreach (var w in call.KnownBy)
            if (_workers.TryGetValue(w, out var worker) && (worker.Ref is not null || worker.Link is not null))
                Deliver(worker, new ForgetCall(m.CallId));
        ReplyWaiters();
    }

    // ------------------------------------------------------------------ dispatch

    /// <summary>
    /// Dispatches once the messages already in the mailbox are handled: a burst of submissions or results becomes
    /// one message per worker instead of one per chunk.
    /// </summary>
    private void RequestDispatch()
    {
        if (_dispatchRequested)
            return;
        _dispatchRequested = true;
        Self.Tell(DispatchNow.Instance);
    }

    private bool _dispatchRequested;

    private sealed class DispatchNow
    {
        public static DispatchNow Instance { get; } = new();
        private DispatchNow() { }
    }

    private readonly Dictionary<WorkerHandle, List<RunChunk>> _outgoing = new();

    private void Dispatch()
    {
        while (_pending.First is { } node && _routees.Count > 0)
        {
            var chunk = _chunks[node.Value];
            if (chunk.Call is { GangSize: > 0, GangStarted: false })
            {
                if (!TryStartGang(chunk.Call))
                    break; // first come, first served: what queued behind the group waits with it
                continue;
            }
            var worker = NextWorkerWithCredit(chunk.Call);
            if (worker is null)
                break;
            _pending.RemoveFirst();
            Stage(chunk, worker);
        }
        foreach (var (worker, batch) in _outgoing)
        {
            if (batch.Count == 0)
                continue;
            Deliver(worker, batch.Count == 1 ? batch[0] : new RunChunks(batch.ToArray()));
            batch.Clear();
        }
        if (_outgoing.Count > 64)
            _outgoing.Clear(); // workers come and go: do not keep the lists of gone ones
        ReportGauges();
    }

    /// <summary>
    /// Starts a group (paired batch) when all its chunks are in and as many workers are idle: every chunk goes out
    /// in this dispatch round, each to a different worker. A chunk retried later (its worker died) goes to an idle
    /// worker, which cannot be one running another chunk of the group; the caller's barrier does the rest.
    /// </summary>
    private bool TryStartGang(CallEntry call)
    {
        if (call.Submitted < call.GangSize)
            return false;
        var idle = new List<WorkerHandle>(call.GangSize);
        for (var k = 0; k < _routees.Count && idle.Count < call.GangSize; k++)
        {
            var w = _routees[(_next + k) % _routees.Count];
            if (w.Running.Count == 0 && !w.AtTaskLimit(_settings.MaxTasksPerChild))
                idle.Add(w);
        }
        if (idle.Count < call.GangSize)
            return false;
        _next = (_routees.IndexOf(idle[^1]) + 1) % _routees.Count;
        call.GangStarted = true;
        var i = 0;
        for (var node = _pending.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.CallId == call.Id)
            {
                _pending.Remove(node);
                Stage(_chunks[node.Value], idle[i++]);
            }
            node = next;
        }
        return true;
    }

    private WorkerHandle? NextWorkerWithCredit(CallEntry call)
    {
        for (var k = 0; k < _routees.Count; k++)
        {
            var i = (_next + k) % _routees.Count;
            var w = _routees[i];
            if (w.Running.Count < call.Window && !w.AtTaskLimit(_settings.MaxTasksPerChild))
            {
                _next = i + 1;
                return w;
            }
        }
        return null;
    }

    /// <summary>Assigns a chunk to a worker; it goes out with the worker's other chunks of this dispatch round.</summary>
    private void Stage(ChunkEntry chunk, WorkerHandle worker)
    {
        if (!_outgoing.TryGetValue(worker, out var batch))
            _outgoing[worker] = batch = [];
        batch.Add(Send(chunk, worker));
    }

    private RunChunk Send(ChunkEntry chunk, WorkerHandle worker)
    {
        chunk.Attempts++;
        chunk.Worker = worker;
        chunk.DispatchedAt = Stopwatch.GetTimestamp();
        chunk.DispatchedToIdle = worker.Running.Count == 0;
        worker.Running.Add(chunk.Id);
        worker.TasksAssigned++;
        var function = chunk.Call.KnownBy.Add(worker.Id) ? chunk.Call.Function.Bytes : [];
        Diagnostics.PoolMetrics.BytesSent.Add(chunk.Items.Inline.Length + function.Length);
        return new RunChunk(chunk.Id, chunk.Attempts, function, chunk.Call.Function.SharedKey, chunk.Items, chunk.Call.SoftMs, chunk.Call.HardMs,
            chunk.Call.TraceParent, chunk.FirstIndex);
    }

    /// <summary>To a worker over its data link when it has one, else through Akka.Remote.</summary>
    private static void Deliver(WorkerHandle w, object message)
    {
        if (w.Link is { } link && link.TrySend(message))
            return;
        w.Ref?.Tell(message);
    }

    /// <summary>
    /// A spawned worker connects its data link as soon as its process runs, before its ActorSystem is up: it is
    /// accepted (and given the initializer) over the link, so it can be ready while its Akka.Remote registration,
    /// which brings death watch, completes in the background.
    /// </summary>
    private void OnDataLinkOpened(DataLinkOpened m)
    {
        if (!_workers.TryGetValue(m.WorkerId, out var w) || w.Link is not null)
        {
            m.Link.Dispose();
            return;
        }
        if (_stopping || _brokenReason is not null)
        {
            m.Link.TrySend(new WorkerRejected(_stopping ? "the pool is shutting down" : _brokenReason!, Retry: true));
            m.Link.Dispose();
            return;
        }
        w.Attach(m.Link);
        m.Link.TrySend(new WorkerAccepted(_initializer));
    }

    private void OnFromWorker(FromWorker m)
    {
        _workers.TryGetValue(m.WorkerId, out var worker);
        switch (m.Message)
        {
            case ChunkDone done:
                OnResults(worker, done);
                break;
            case ChunksDone batch:
                OnResults(worker, batch.Results);
                break;
            case WorkerReady ready:
                OnWorkerReady(ready);
                break;
            case WorkerInitFailed failed:
                OnWorkerInitFailed(failed);
                break;
        }
    }

    /// <summary>Results from a worker (through Akka.Remote or its data link), then one dispatch round.</summary>
    private void OnResults(WorkerHandle? worker, params ChunkDone[] results)
    {
        foreach (var done in results)
            OnChunkDone(done, worker);
        RequestDispatch();
    }

    private void OnChunkDone(ChunkDone m, WorkerHandle? worker)
    {
        if (m.Chunk == WarmUpChunk && worker is not null && worker.EndWarmUp())
        {
            OnWarmedUp(worker);
            return;
        }
        _lastProgress = Stopwatch.GetTimestamp();
        if (worker is null || !worker.Running.Remove(m.Chunk))
        {
            _log.Debug("Dropped a result for {0} from {1}: not outstanding there.", m.Chunk, worker?.Describe() ?? "a worker no longer in the pool");
            Spill.Delete(m.Results);
            return;
        }
        if (_chunks.Remove(m.Chunk, out var chunk) && chunk.Worker == worker)
        {
            chunk.Call.Measure(chunk, m.ElapsedTicks, _settings.MaxWindow);
            Diagnostics.PoolMetrics.ChunkDuration.Record((double)m.ElapsedTicks / Stopwatch.Frequency);
            var done = m.Error is null ? chunk.Count : m.Completed;
            worker.ItemsDone += done;
            chunk.Call.Completed += done;
            if (m.Error is null)
            {
                Diagnostics.PoolMetrics.TasksCompleted.Add(chunk.Count);
                chunk.Call.Sink.ChunkCompleted(chunk.Id.Index, chunk.Count, m.Results);
            }
            else
            {
                Diagnostics.PoolMetrics.TasksCompleted.Add(m.Completed);
                Diagnostics.PoolMetrics.TasksFailed.Add(1);
                chunk.Call.Failed++;
                chunk.Call.Sink.ChunkFailed(chunk.Id.Index, m.Results, m.Completed, TaskError(chunk, m, worker));
            }
        }
        else
        {
            Spill.Delete(m.Results); // the call ended, or the chunk belongs to a newer attempt elsewhere
            if (chunk is not null)
                _chunks[m.Chunk] = chunk;
        }
        worker.TasksDone++;
        RetireIfDone(worker);
        ReplyWaiters();
    }

    private static Exception TaskError(ChunkEntry chunk, ChunkDone m, WorkerHandle worker)
    {
        var task = chunk.FirstIndex + m.Completed;
        if (m.Error!.Type == typeof(TaskTimeoutException).FullName)
        {
            var hard = m.Error.StackTrace == Worker.TaskClock.HardMarker;
            var limit = TimeSpan.FromMilliseconds(hard ? chunk.Call.HardMs : chunk.Call.SoftMs);
            return new TaskTimeoutException(task, $"Task {task} {m.Error.Message} in worker {worker.Describe()}.", worker.Describe(), limit, hard);
        }
        return new TaskFailedException(task, m.Error.Type, m.Error.Message, m.Error.StackTrace, worker.Describe());
    }

    // ------------------------------------------------------------------ workers

    /// <summary>Starts a worker for <paramref name="slot"/> (1..processes), whose predecessors there number <paramref name="restarts"/>.</summary>
    private void LaunchWorker(int slot, int restarts)
    {
        Diagnostics.PoolMetrics.WorkerStarts.Add(1);
        var id = $"w{++_launchCounter}";
        var entry = new WorkerHandle(id) { Slot = slot, Restarts = restarts };
        _workers[id] = entry;
        Timers.StartSingleTimer(("startup", id), new WorkerStartupTimedOut(id), _settings.WorkerStartupTimeout);
        var self = Self;
        var launcher = _launcher;
        Task.Run(() => launcher.Launch(id, self)).PipeTo(self,
            success: pid => new WorkerLaunched(id, pid),
            failure: e => new WorkerLaunchFailed(id, e.GetBaseException().Message));
    }

    private void OnWorkerLaunched(WorkerLaunched m)
    {
        if (_workers.TryGetValue(m.WorkerId, out var w))
            w.Pid ??= m.Pid;
    }

    /// <summary>
    /// A registration: first a challenge (the worker proves the secret only in answer to one, and the coordinator proves
    /// it first), then the answer is checked. A worker this pool launched proves the pool's secret; any other, the
    /// cluster's.
    /// </summary>
    private void OnRegister(RegisterWorker m)
    {
        var fromNode = _settings.Cluster is not null && !_workers.ContainsKey(m.WorkerId);
        var key = $"{Sender.Path}|{m.WorkerId}";
        if (m.Proof.Length == 0)
        {
            var secret = fromNode ? _settings.Cluster!.Secret : _secret;
            var nonce = Proof.NewNonce();
            _challenges.Add(key, nonce, secret);
            Sender.Tell(new RegisterChallenge(m.WorkerId, nonce, Proof.Of(secret, "coordinator", m.WorkerId, m.WorkerNonce, nonce)));
            return;
        }
        if (_challenges.Take(key, m.ChallengeNonce) is not { } proven)
            return; // an answer to no open challenge of ours (an old one, or forged): the worker asks again
        if (!Proof.Matches(Proof.Of(proven, "worker", m.WorkerId, m.ChallengeNonce, m.WorkerNonce), m.Proof))
        {
            var expected = !fromNode ? "this pool's secret" : "the cluster's secret (actorpool.cluster.secret / ACTORPOOL_SECRET)";
            _refusals.Refused(Sender.Path.Address.ToString(), $"a worker registration (worker '{m.WorkerId}', pid {m.Pid})", $"it does not hold {expected}");
            Sender.Tell(new WorkerRejected("wrong pool secret"));
            return;
        }
        if (fromNode && MemberAt(Sender.Path.Address) is var member && member?.HasRole(_settings.Cluster!.WorkerRole) != true)
        {
            if (member is null)
                return; // not a member yet (or any more): it asks again in a second
            _log.Warning("Refused worker '{0}' from cluster member {1}: the member lacks the role '{2}' (actorpool.cluster.worker-role).", m.WorkerId, member.Address, _settings.Cluster!.WorkerRole);
            Sender.Tell(new WorkerRejected($"the member lacks the worker role '{_settings.Cluster.WorkerRole}'"));
            return;
        }
        if (_stopping || _brokenReason is not null)
        {
            Sender.Tell(new WorkerRejected(_stopping ? "the pool is shutting down" : _brokenReason!, Retry: true));
            return;
        }
        if (!_workers.TryGetValue(m.WorkerId, out var entry))
        {
            entry = new WorkerHandle(m.WorkerId) { External = true, Node = fromNode ? Sender.Path.Address : null };
            _workers[m.WorkerId] = entry;
            if (fromNode)
                _log.Info("Node worker {0} joined from {1} (pid {2}).", m.WorkerId, Sender.Path.Address, m.Pid);
        }
        if (entry.Ref is not null)
        {
            Sender.Tell(new WorkerAccepted(_initializer)); // a repeated registration: the reply was lost
            return;
        }
        entry.Attach(m.Worker);
        entry.Pid = m.Pid;
        entry.Host = m.Host;
        _byRef[m.Worker] = entry;
        Context.Watch(m.Worker);
        m.Worker.Tell(new WorkerAccepted(_initializer));
    }

    // ------------------------------------------------------------------ cluster members

    private Akka.Cluster.Member? MemberAt(Address address) =>
        Akka.Cluster.Cluster.Get(Context.System).State.Members.FirstOrDefault(x => x.Address.Equals(address));

    /// <summary>
    /// A worker node leaving: its workers take no new work, finish what they hold (the node waits for that before it
    /// goes) and are removed with it. A node removed (left, or downed by the split-brain resolver after it stayed
    /// unreachable) is worker loss: what its workers held runs again elsewhere. Mere unreachability changes nothing.
    /// </summary>
    private void Drain(WorkerHandle w, string why)
    {
        if (!w.Drain())
            return;
        _routees.Remove(w);
        if (_next > _routees.Count) _next = 0;
        _log.Info("Worker {0} takes no new work: {1}; {2} chunk(s) still running there.", w.Describe(), why, w.Running.Count);
    }

    private sealed class SelfRemoved
    {
        public static SelfRemoved Instance { get; } = new();
        private SelfRemoved() { }
    }

    private void LostCluster(string how)
    {
        if (_brokenReason is not null || _stopping)
            return;
        _brokenReason = $"this pool's coordinator was {how} (by the split-brain resolver after it lost touch with the cluster, or by a member); create a new pool";
        _log.Error("Pool broken: {0}.", _brokenReason);
        FailAllCalls(new PoolBrokenException(_brokenReason));
    }

    private void OnMemberEvent(Akka.Cluster.ClusterEvent.IMemberEvent e)
    {
        // The coordinator's own member downed (by the split-brain resolver, or by a member that may): its calls cannot
        // complete. They fail now, saying why, instead of waiting on a system that is shutting down.
        if (e is Akka.Cluster.ClusterEvent.MemberDowned downed && downed.Member.Address.Equals(Akka.Cluster.Cluster.Get(Context.System).SelfAddress))
        {
            LostCluster("downed");
            return;
        }
        switch (e)
        {
            case Akka.Cluster.ClusterEvent.MemberLeft or Akka.Cluster.ClusterEvent.MemberExited:
                foreach (var w in _workers.Values.Where(x => e.Member.Address.Equals(x.Node)).ToList())
                    Drain(w, $"its node {e.Member.Address} is leaving the cluster");
                Dispatch();
                break;
            case Akka.Cluster.ClusterEvent.MemberRemoved removed:
                foreach (var w in _workers.Values.Where(x => e.Member.Address.Equals(x.Node)).ToList())
                    OnWorkerGone(w.Id, null, removed.PreviousStatus == Akka.Cluster.MemberStatus.Down ? "its node was downed" : "its node left the cluster");
                break;
        }
    }

    /// <summary>
    /// Call id 0 is the warm-up: one tiny chunk through the whole path (remoting, serializers, task thread) before a
    /// worker counts as ready, so the first real task does not pay for the cold start.
    /// </summary>
    private static readonly ChunkId WarmUpChunk = new(0, 0);

    private static readonly byte[] WarmUpFunction = Payload.Serialize(new Execution.MapFunction<int, int>(static x => x + 1));
    private static readonly Blob WarmUpItems = Blob.Of(Payload.Serialize(new[] { 1, 2, 3 }));

    private void OnWorkerReady(WorkerReady m)
    {
        if (!_workers.TryGetValue(m.WorkerId, out var w) || !w.BeginWarmUp())
            return;
        Deliver(w, new RunChunk(WarmUpChunk, 1, WarmUpFunction, 0, WarmUpItems));
    }

    private void OnWarmedUp(WorkerHandle w)
    {
        Deliver(w, new ForgetCall(WarmUpChunk.CallId));
        if (w.Leaving || _stopping)
        {
            RetireIfDone(w);
            return;
        }
        Timers.Cancel(("startup", w.Id));
        _consecutiveStartFailures = 0;
        _routees.Add(w);
        _log.Debug("Worker {0} ready.", w.Describe());
        Dispatch();
        ReplyWaiters();
    }

    private void OnWorkerInitFailed(WorkerInitFailed m)
    {
        var who = _workers.TryGetValue(m.WorkerId, out var w) ? w.Describe() : m.WorkerId;
        Break($"The pool's initializer raised {m.Error.Type} in worker {who}: {m.Error.Message}");
    }

    private void OnStartupTimedOut(WorkerStartupTimedOut m)
    {
        if (!_workers.TryGetValue(m.WorkerId, out var w) || w.WasReady)
            return;
        _log.Warning("Worker {0} was not ready within {1} (actorpool.worker.startup-timeout); killing it.", w.Describe(), _settings.WorkerStartupTimeout);
        w.MarkStartTimedOut();
        _launcher.Kill(w.Id);
    }

    private void OnWorkerGone(string workerId, int? exitCode, string errorTail)
    {
        if (!_workers.Remove(workerId, out var w))
            return;
        // Seen as gone (by death watch, say) but perhaps still running: it must not live on unaccounted.
        _launcher.Kill(workerId);
        w.Link?.Dispose();
        Timers.Cancel(("startup", w.Id));
        if (w.Ref is not null)
        {
            _byRef.Remove(w.Ref);
            Context.Unwatch(w.Ref);
        }
        _routees.Remove(w);
        if (_next > _routees.Count) _next = 0;

        var requeued = 0;
        var failed = 0;
        foreach (var id in w.Running)
        {
            if (!_chunks.TryGetValue(id, out var chunk) || chunk.Worker != w)
                continue;
            chunk.Worker = null;
            if (chunk.Attempts > _settings.MaxTaskRetries)
            {
                _chunks.Remove(id);
                chunk.Call.Sink.ChunkFailed(id.Index, Blob.Of([]), 0, new WorkerLostException(chunk.FirstIndex, w.Describe(), exitCode, chunk.Attempts));
                Diagnostics.PoolMetrics.TasksFailed.Add(1);
                chunk.Call.Failed++;
                failed++;
            }
            else
            {
                _pending.AddFirst(id);
                Diagnostics.PoolMetrics.TasksRetried.Add(chunk.Count);
                chunk.Call.Sink.ChunkRetried(id.Index, chunk.Count);
                chunk.Call.Retried += chunk.Count;
                requeued++;
            }
        }
        w.Running.Clear();

        var expected = w.Leaving || _stopping;
        if (w.WasReady && !expected)
            Diagnostics.PoolMetrics.WorkerLosses.Add(1);
        if (!w.WasReady && !expected)
        {
            // Never became ready: a start failure. Several in a row mean the pool cannot work at all.
            var why = w.StartTimedOut ? $"was not ready within {_settings.WorkerStartupTimeout}" : $"{WorkerLostException.ExitText(exitCode)} before it was ready";
            var tail = string.IsNullOrWhiteSpace(errorTail) ? "" : $" Its error output: {errorTail.Trim()}";
            _consecutiveStartFailures++;
            if (_consecutiveStartFailures >= _settings.MaxConsecutiveStartFailures)
                Break($"{_consecutiveStartFailures} worker processes in a row failed to start; the last, {w.Describe()}, {why}.{tail}");
            else
                _log.Warning("Worker {0} {1}; starting another.{2}", w.Describe(), why, tail);
        }
        else if (expected)
        {
            _log.Debug("Worker {0} {1}.", w.Describe(), WorkerLostException.ExitText(exitCode));
        }
        else
        {
            var what = requeued + failed == 0 ? "it held no task" :
                $"{requeued} task chunk(s) re-queued{(failed > 0 ? $", {failed} failed after {_settings.MaxTaskRetries + 1} attempt(s)" : "")}";
            if (w.Node is not null)
                _log.Warning("Node worker {0} is gone ({1}); {2}.", w.Describe(), errorTail, what);
            else
                _log.Warning("Worker {0} {1}; {2}; {3}.", w.Describe(), WorkerLostException.ExitText(exitCode), what, w.External ? "it was not started by this pool" : "starting a replacement");
        }

        // A retiring worker's replacement started when it retired (RetireIfDone).
        if (!_stopping && _brokenReason is null && !w.External && w.Phase != WorkerPhase.Retiring)
            LaunchWorker(w.Slot, w.Restarts + 1);
        w.Gone();
        Dispatch();
        ReplyWaiters();
    }

    private void RetireIfDone(WorkerHandle w)
    {
        if (w.Running.Count > 0 || w.Phase == WorkerPhase.Retiring || !(w.AtTaskLimit(_settings.MaxTasksPerChild) || _stopping))
            return;
        w.Retire();
        _routees.Remove(w);
        if (_next > _routees.Count) _next = 0;
        Deliver(w, Retire.Instance);
        _log.Debug("Worker {0} retires after {1} task(s).", w.Describe(), w.TasksDone);
        if (!_stopping && !w.External)
            LaunchWorker(w.Slot, w.Restarts + 1);
    }

    private void Break(string reason)
    {
        if (_brokenReason is not null)
            return;
        _brokenReason = reason;
        _log.Error("Pool broken: {0}", reason);
        FailAllCalls(new PoolBrokenException(reason));
        foreach (var w in _workers.Values)
            _launcher.Kill(w.Id);
        ReplyWaiters();
    }

    private void OnStopWorkers()
    {
        _stopping = true;
        // Calls still open here were abandoned by their callers (an imap neither read to the end nor disposed).
        FailAllCalls(new ObjectDisposedException(nameof(Pool), "The pool was closed while this call's results were still unread."));
        _stopWaiters.Add(Sender);
        foreach (var w in _workers.Values.ToList())
        {
            if (w.Ref is null)
                _launcher.Kill(w.Id); // still starting: nothing to lose
            else
                RetireIfDone(w);
        }
        Timers.StartSingleTimer("stop-timeout", TerminateWorkers.Instance, _settings.WorkerShutdownTimeout + _settings.WorkerShutdownTimeout);
        ReplyWaiters();
    }

    private void OnTerminate()
    {
        _stopping = true;
        if (!Sender.IsNobody() && !Sender.Equals(Self))
            _stopWaiters.Add(Sender);
        FailAllCalls(new ObjectDisposedException(nameof(Pool), "The pool was terminated while this call was running."));
        foreach (var w in _workers.Values)
            _launcher.Kill(w.Id);
        ReplyWaiters();
    }

    private long _reportedQueued, _reportedInFlight, _reportedWorkers;

    /// <summary>This pool's share of the process-wide gauges (queued and running chunks, ready workers).</summary>
    private void ReportGauges(bool gone = false)
    {
        long queued = gone ? 0 : _pending.Count, inFlight = gone ? 0 : _chunks.Count - _pending.Count, workers = gone ? 0 : _routees.Count;
        Diagnostics.PoolMetrics.Adjust(queued - _reportedQueued, inFlight - _reportedInFlight, workers - _reportedWorkers);
        (_reportedQueued, _reportedInFlight, _reportedWorkers) = (queued, inFlight, workers);
    }

    private void ReplyWaiters()
    {
        ReportGauges();
        var status = Status();
        if (_readyWaiters.Count > 0 && (status.ReadyWorkers >= _settings.Processes || _brokenReason is not null || _stopping))
        {
            foreach (var w in _readyWaiters) w.Tell(status);
            _readyWaiters.Clear();
        }
        if (_idleWaiters.Count > 0 && (_calls.Count == 0 || _brokenReason is not null || Stalled()))
        {
            foreach (var w in _idleWaiters) w.Tell(status);
            _idleWaiters.Clear();
            Timers.Cancel("idle-check");
        }
        if (_stopWaiters.Count > 0 && _workers.Count == 0)
        {
            foreach (var w in _stopWaiters) w.Tell(status);
            _stopWaiters.Clear();
        }
    }

    /// <summary>
    /// Open calls with nothing queued or running and no progress for a shutdown timeout: their callers stopped
    /// reading (an imap neither read to the end nor disposed). Drain does not wait for them.
    /// </summary>
    private bool Stalled() =>
        _chunks.Count == 0 && Stopwatch.GetElapsedTime(_lastProgress) > _settings.WorkerShutdownTimeout;

    private sealed class IdleCheck
    {
        public static IdleCheck Instance { get; } = new();
        private IdleCheck() { }
    }

    // ------------------------------------------------------------------ state

    private sealed class CallEntry(long id, Execution.SerializedFunction function, ICallSink sink, int gangSize)
    {
        public long Id { get; } = id;

        /// <summary>&gt; 0: the call is one group of this many chunks, started together on distinct workers.</summary>
        public int GangSize { get; } = gangSize;
        public bool GangStarted { get; set; }

        /// <summary>Each task's time limits in milliseconds (0: none).</summary>
        public int SoftMs { get; init; }
        public int HardMs { get; init; }

        /// <summary>The caller's span of the call (W3C traceparent), sent with each chunk; null when not traced.</summary>
        public string? TraceParent { get; init; }
        public int Submitted { get; set; }

        /// <summary>For status: tasks in the call when known, and its outcomes so far.</summary>
        public long? Total { get; set; }
        public long Completed { get; set; }
        public long Failed { get; set; }
        public long Retried { get; set; }
        public long StartedAt { get; } = Stopwatch.GetTimestamp();
        public Execution.SerializedFunction Function { get; } = function;
        public ICallSink Sink { get; } = sink;
        public HashSet<string> KnownBy { get; } = new();

        /// <summary>Chunks one worker may hold for this call; grows only while tasks are far shorter than a round trip.</summary>
        public int Window { get; private set; } = 1;

        private double _execTicks = -1;
        private double _overheadTicks = -1;

        public void Measure(ChunkEntry chunk, long execTicks, int maxWindow)
        {
            if (GangSize > 0)
                return; // a group's chunks each need an idle worker: its window stays 1
            _execTicks = _execTicks < 0 ? execTicks : 0.8 * _execTicks + 0.2 * execTicks;
            if (chunk.DispatchedToIdle)
            {
                var overhead = Math.Max(0, Stopwatch.GetTimestamp() - chunk.DispatchedAt - execTicks);
                _overheadTicks = _overheadTicks < 0 ? overhead : 0.8 * _overheadTicks + 0.2 * overhead;
            }
            if (_overheadTicks >= 0)
                Window = (int)Math.Clamp(1 + Math.Floor(_overheadTicks / Math.Max(1, _execTicks)), 1, maxWindow);
        }
    }

    private sealed class ChunkEntry(ChunkId id, Blob items, long firstIndex, int count, CallEntry call)
    {
        public ChunkId Id { get; } = id;
        public Blob Items { get; } = items;
        public long FirstIndex { get; } = firstIndex;
        public int Count { get; } = count;
        public CallEntry Call { get; } = call;
        public int Attempts { get; set; }
        public WorkerHandle? Worker { get; set; }
        public long DispatchedAt { get; set; }
        public bool DispatchedToIdle { get; set; }
    }
}
