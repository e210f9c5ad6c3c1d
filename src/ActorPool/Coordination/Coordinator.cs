using System.Diagnostics;
using ActorPool.Configuration;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;
using Akka.Event;

namespace ActorPool.Coordination;

/// <summary>
/// The pool's coordinator actor: wiring and lifecycle around three plain parts it owns and calls on its own thread.
/// <code>
///  caller ──StartCall/SubmitChunk──▶ Ledger (calls, queue, round-robin, windows, groups, retries, exactly-once)
///                                        │ Dispatch ─▶ WorkerHandle.Send ─▶ IWorkerChannel (data link | Akka.Remote)
///  launcher, cluster events ──▶ WorkerHandle phases (launching … gone) ──▶ Ledger.AddReady / RemoveReady / Lost
///  worker ─▶ channel (peer proven) ─▶ gate (AroundReceive) ─▶ OnWorkerMessage ─▶ Ledger.Complete ─▶ ICallSink
/// </code>
/// What it adds: the gate for other processes' messages, registration and status (challenge-response), warm-up,
/// start failures, retirement, cluster membership, breaking and shutdown, gauges.
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
    private readonly Ledger _ledger;

    private int _launchCounter;
    private int _consecutiveStartFailures;
    private string? _brokenReason;
    private bool _stopping;
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
        _ledger = new Ledger(settings.MaxTaskRetries, settings.MaxWindow, settings.MaxTasksPerChild);

        Receive<StartCall>(OnStartCall);
        Receive<SubmitChunk>(OnSubmitChunk);
        Receive<EndCall>(OnEndCall);
        // A worker's messages, from either channel, with the worker the channel proved they come from.
        Receive<WorkerDraining>(m =>
        {
            OnWorkerMessage(_byRef.GetValueOrDefault(Sender), m);
            Sender.Tell(DrainAck.Instance);
        });
        Receive<IWorkerMessage>(m => OnWorkerMessage(_byRef.GetValueOrDefault(Sender), m));
        Receive<FromWorker>(m =>
        {
            var from = _workers.GetValueOrDefault(m.WorkerId) is { Link: not null } w ? w : null;
            from?.Heard(Stopwatch.GetTimestamp());
            OnWorkerMessage(from, m.Message);
        });
        Receive<WatchLinks>(_ => OnWatchLinks());
        Receive<DataLinkOpened>(OnDataLinkOpened);
        Receive<DataLinkRefused>(m => _refusals.Refused("the data link", $"a connection (worker id '{m.WorkerId ?? "none given"}')", "it does not hold this pool's secret"));
        Receive<DispatchNow>(_ =>
        {
            _dispatchRequested = false;
            Dispatch();
        });

        Receive<RegisterWorker>(OnRegister);
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
        Receive<InputEnded>(m => _ledger.SetTotal(m.CallId, m.TotalTasks));
        Receive<WaitForIdle>(_ =>
        {
            _idleWaiters.Add(Sender);
            Timers.StartPeriodicTimer("idle-check", IdleCheck.Instance, TimeSpan.FromMilliseconds(250));
            ReplyWaiters();
        });
        Receive<IdleCheck>(_ => ReplyWaiters());
        Receive<StopWorkers>(_ => OnStopWorkers());
        Receive<WarmHosts>(OnWarmHosts);
        Receive<Akka.Cluster.ClusterEvent.IMemberEvent>(OnMemberEvent);
        Receive<Akka.Cluster.ClusterEvent.CurrentClusterState>(_ => { });
        Receive<SelfRemoved>(_ => LostCluster("removed from its cluster"));
        Receive<TerminateWorkers>(_ => OnTerminate());
    }

    private readonly PeerRefusals _refusals;
    private readonly Challenges _challenges = new();

    /// <summary>
    /// The gate in front of every receive. Calls, chunks, shutdown, counts and status, launcher and data link reports
    /// come only from this process, wrapped as <see cref="Local"/> (a proof no remote
    /// sender can forge, whatever sender address or serializer it names). Unwrapped, only what a peer may send is
    /// handled: a registration, a status request (both challenge-response), a registered worker's own messages, and
    /// cluster events (from this member's cluster extension). Everything else is dropped, and logged once per peer and
    /// interval.
    /// </summary>
    protected override bool AroundReceive(Receive receive, object message)
    {
        // This actor's own timers: Akka's wrapper holds a reference to this actor's timer scheduler, which no sender
        // can forge either (base unwraps it, and drops any that is not its own).
        if (message is IWrappedMessage && message.GetType().DeclaringType?.FullName == "Akka.Actor.Scheduler.TimerScheduler")
            return base.AroundReceive(receive, message);
        if (message is Local local)
        {
            if (local.IsGenuine)
                return base.AroundReceive(receive, local.Message);
            _refusals.Refused(Sender.Path.Address.ToString(), "a forged local message", "it was not made in this process");
            return true;
        }
        var why = message switch
        {
            Terminated or RegisterWorker or StatusRequest => null,
            IWorkerMessage => _byRef.ContainsKey(Sender) ? null : "its sender is not a registered worker of this pool",
            Akka.Cluster.ClusterEvent.IMemberEvent or Akka.Cluster.ClusterEvent.CurrentClusterState when _settings.Cluster is not null => null,
            _ => "only the pool's own process may send it",
        };
        if (why is null)
            return base.AroundReceive(receive, message);
        _refusals.Refused(Sender.Path.Address.ToString(), $"a {message.GetType().Name}", why);
        return true;
    }

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
            cluster.RegisterOnMemberRemoved(() => self.TellLocal(SelfRemoved.Instance));
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

    private void FailAllCalls(Exception error) => _ledger.FailAll(error);

    private PoolCounts Status() =>
        new(_ledger.ReadyWorkers, _workers.Count, _ledger.ActiveCalls, _brokenReason, _workers.Values.Count(w => w.IsLinked));

    /// <summary>The pool as users see it (<see cref="ActorPool.PoolStatus"/>): workers by slot, then calls, oldest first.</summary>
    private ActorPool.PoolStatus Snapshot()
    {
        var now = Stopwatch.GetTimestamp();
        var workers = _workers.Values.OrderBy(w => w.Slot == 0 ? int.MaxValue : w.Slot).ThenBy(w => w.Id, StringComparer.Ordinal).Select(w =>
            new WorkerStatus(w.Id, w.Slot, w.Pid, w.Host, w.Node is null ? _settings.StartMethod : "node", w.State, _ledger.OldestOn(w, now),
                w.Running.Count, w.ItemsDone, w.Restarts)).ToList();
        var calls = _ledger.Calls(now, hidden: WarmUpChunk.CallId);
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
        _ledger.Open(m);
    }

    private void OnSubmitChunk(SubmitChunk m)
    {
        if (_ledger.Submit(m))
            RequestDispatch();
    }

    private void OnEndCall(EndCall m)
    {
        if (_ledger.End(m.CallId) is not { } knownBy)
            return;
        foreach (var id in knownBy)
            if (_workers.TryGetValue(id, out var worker))
                worker.Send(new ForgetCall(m.CallId));
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
        Self.TellLocal(DispatchNow.Instance);
    }

    private bool _dispatchRequested;

    private sealed class DispatchNow
    {
        public static DispatchNow Instance { get; } = new();
        private DispatchNow() { }
    }

    /// <summary>The hosts of the queues and locks the pool's tasks use (told by the pool as it sends them).</summary>
    private readonly List<string> _warmHosts = [];

    /// <summary>New hosts: every worker on a data link starts its connection to them now, later workers when they are accepted.</summary>
    private void OnWarmHosts(WarmHosts m)
    {
        var fresh = m.Hosts.Where(h => !_warmHosts.Contains(h)).Take(LinkWarm.MaxHosts - _warmHosts.Count).ToArray();
        if (fresh.Length == 0)
            return;
        _warmHosts.AddRange(fresh);
        var relayHost = Hosting.Runtime.StartedHostAddress;
        foreach (var w in _workers.Values)
            w.Link?.TrySend(new LinkWarm(fresh, relayHost));
    }

    private static readonly Action<WorkerHandle, object> DeliverTo = static (worker, message) => worker.Send(message);

    private void Dispatch()
    {
        _ledger.Dispatch(DeliverTo);
        ReportGauges();
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
        if (_brokenReason is not null)
        {
            m.Link.TrySend(new WorkerRejected(_brokenReason, Retry: true));
            m.Link.Dispose();
            return;
        }
        w.Attach(m.Link);
        m.Link.TrySend(new WorkerAccepted(_initializer));
        if (_warmHosts.Count > 0)
            m.Link.TrySend(new LinkWarm([.. _warmHosts], Hosting.Runtime.StartedHostAddress));
        if (!Timers.IsTimerActive("watch-links"))
        {
            _lastWatch = Stopwatch.GetTimestamp();
            Timers.StartPeriodicTimer("watch-links", WatchLinks.Instance, WatchInterval);
        }
    }

    /// <summary>How often workers on a data link that have said nothing lately are pinged.</summary>
    private TimeSpan WatchInterval => TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(2).Ticks, _settings.WorkerUnresponsiveTimeout.Ticks / 4));

    private long _lastWatch;
    private long _pingSeq;

    private sealed class WatchLinks
    {
        public static WatchLinks Instance { get; } = new();
        private WatchLinks() { }
    }

    /// <summary>
    /// The death watch of workers on a data link (they have no Akka.Remote association): each one silent for an
    /// interval is pinged, and one silent past <c>actorpool.worker.unresponsive-timeout</c> (its process stopped or
    /// frozen) is killed; its exit then re-queues what it ran. When this process itself was held up (stopped, or
    /// starved of CPU) longer than that, no worker is blamed for it.
    /// </summary>
    private void OnWatchLinks()
    {
        var now = Stopwatch.GetTimestamp();
        var interval = WatchInterval;
        var held = Stopwatch.GetElapsedTime(_lastWatch, now) > interval * 3;
        _lastWatch = now;
        var any = false;
        foreach (var w in _workers.Values)
        {
            if (w.Link is null || w.Phase == WorkerPhase.Gone || w.Unresponsive)
                continue;
            any = true;
            if (held)
            {
                w.Heard(now);
                continue;
            }
            var silent = Stopwatch.GetElapsedTime(w.LastHeard, now);
            if (silent > _settings.WorkerUnresponsiveTimeout)
            {
                _log.Warning("Worker {0} answered no ping for {1:0} s (actorpool.worker.unresponsive-timeout): its process is stopped or frozen; killing it.",
                    w.Describe(), silent.TotalSeconds);
                w.MarkUnresponsive();
                _launcher.Kill(w.Id);
            }
            else if (silent >= interval)
            {
                w.Link.TrySend(new LinkPing(++_pingSeq));
            }
        }
        if (!any)
            Timers.Cancel("watch-links");
    }

    /// <summary>
    /// The one inbound path of a worker's messages, whichever channel they came on: <paramref name="from"/> is the
    /// worker the channel proved sent them (null: none of this pool's, or gone); a worker id inside a message is
    /// never trusted on its own.
    /// </summary>
    private void OnWorkerMessage(WorkerHandle? from, object message)
    {
        switch (message)
        {
            case ChunkDone done:
                OnResults(from, done);
                break;
            case ChunksDone batch:
                OnResults(from, batch.Results);
                break;
            case WorkerReady when from is not null:
                OnWorkerReady(from);
                break;
            case WorkerInitFailed failed when from is not null:
                Break($"The pool's initializer raised {failed.Error.Type} in worker {from.Describe()}: {failed.Error.Message}");
                break;
            case WorkerDraining when from is not null:
                Drain(from, "its node is leaving");
                break;
            case LinkPong:
                break; // heard: that is all a pong says
        }
    }

    /// <summary>Results from a worker, then one dispatch round.</summary>
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
        if (!_ledger.Complete(worker, m))
        {
            _log.Debug("Dropped a result for {0} from {1}: not outstanding there.", m.Chunk, worker?.Describe() ?? "a worker no longer in the pool");
            return;
        }
        RetireIfDone(worker!);
        ReplyWaiters();
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
            success: pid => Local.Of(new WorkerLaunched(id, pid)),
            failure: e => Local.Of(new WorkerLaunchFailed(id, e.GetBaseException().Message)));
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
            Reply(new RegisterChallenge(m.WorkerId, nonce, Proof.Of(secret, "coordinator", m.WorkerId, m.WorkerNonce, nonce)));
            return;
        }
        if (_challenges.Take(key, m.ChallengeNonce) is not { } proven)
            return; // an answer to no open challenge of ours (an old one, or forged): the worker asks again
        if (!Proof.Matches(Proof.Of(proven, "worker", m.WorkerId, m.ChallengeNonce, m.WorkerNonce), m.Proof))
        {
            var expected = !fromNode ? "this pool's secret" : "the cluster's secret (actorpool.cluster.secret / ACTORPOOL_SECRET)";
            _refusals.Refused(Sender.Path.Address.ToString(), $"a worker registration (worker '{m.WorkerId}', pid {m.Pid})", $"it does not hold {expected}");
            Reply(new WorkerRejected("wrong pool secret"));
            return;
        }
        if (fromNode && MemberAt(Sender.Path.Address) is var member && member?.HasRole(_settings.Cluster!.WorkerRole) != true)
        {
            if (member is null)
                return; // not a member yet (or any more): it asks again in a second
            _log.Warning("Refused worker '{0}' from cluster member {1}: the member lacks the role '{2}' (actorpool.cluster.worker-role).", m.WorkerId, member.Address, _settings.Cluster!.WorkerRole);
            Reply(new WorkerRejected($"the member lacks the worker role '{_settings.Cluster.WorkerRole}'"));
            return;
        }
        if (_brokenReason is not null || (_stopping && fromNode))
        {
            Reply(new WorkerRejected(_brokenReason ?? "the pool is shutting down", Retry: true));
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
            Reply(new WorkerAccepted(_initializer)); // a repeated registration: the reply was lost
            return;
        }
        entry.Attach(m.Worker, Self);
        entry.Pid = m.Pid;
        entry.Host = m.Host;
        _byRef[m.Worker] = entry;
        Context.Watch(m.Worker);
        Reply(new WorkerAccepted(_initializer), m.Worker);
    }

    /// <summary>To a worker's actor: as <see cref="Local"/> when it lives in this process (a thread worker obeys nothing else).</summary>
    private void Reply(object message, IActorRef? to = null)
    {
        to ??= Sender;
        to.Tell(to.Path.Address.HasLocalScope ? Local.Of(message) : message, Self);
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
        _ledger.RemoveReady(w);
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

    private void OnWorkerReady(WorkerHandle w)
    {
        if (w.BeginWarmUp())
            w.Send(new RunChunk(WarmUpChunk, 1, WarmUpFunction, 0, WarmUpItems));
    }

    private void OnWarmedUp(WorkerHandle w)
    {
        w.Send(new ForgetCall(WarmUpChunk.CallId));
        if (w.Leaving || _stopping)
        {
            RetireIfDone(w);
            return;
        }
        Timers.Cancel(("startup", w.Id));
        _consecutiveStartFailures = 0;
        _ledger.AddReady(w);
        _log.Debug("Worker {0} ready.", w.Describe());
        Dispatch();
        ReplyWaiters();
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
        var (requeued, failed) = _ledger.Lost(w, exitCode);

        var expected = w.Leaving || _stopping;
        if (w.WasReady && !expected)
            Diagnostics.PoolMetrics.WorkerLosses.Add(1);
        if (!w.WasReady && !expected && w.External)
        {
            // A node's worker (or another process's) that went before it was ready, as one may on a busy machine: not a
            // start failure of this pool, which starts no replacement for it and so cannot loop on it.
            _log.Warning("Worker {0} went before it was ready ({1}); it was not started by this pool.", w.Describe(),
                string.IsNullOrWhiteSpace(errorTail) ? WorkerLostException.ExitText(exitCode) : errorTail.Trim());
        }
        else if (!w.WasReady && !expected)
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
        _ledger.RemoveReady(w);
        w.Send(Retire.Instance);
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
            // A worker still starting is let start (its initializer runs, as Python's does when close() follows the
            // pool at once) and retires once ready; the stop timeout below bounds that.
            if (w.IsLinked)
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
        foreach (var w in _workers.Values.ToList())
        {
            // A node's worker is its node's to end, not this pool's: it is written off now (its calls were just
            // failed, so what it still sends is dropped), and its node stops it when this member leaves the cluster.
            if (w.Node is not null)
                OnWorkerGone(w.Id, null, "");
            else
                _launcher.Kill(w.Id);
        }
        ReplyWaiters();
    }

    private long _reportedQueued, _reportedInFlight, _reportedWorkers;

    /// <summary>This pool's share of the process-wide gauges (queued and running chunks, ready workers).</summary>
    private void ReportGauges(bool gone = false)
    {
        long queued = gone ? 0 : _ledger.Queued, inFlight = gone ? 0 : _ledger.Running, workers = gone ? 0 : _ledger.ReadyWorkers;
        Diagnostics.PoolMetrics.Adjust(queued - _reportedQueued, inFlight - _reportedInFlight, workers - _reportedWorkers);
        (_reportedQueued, _reportedInFlight, _reportedWorkers) = (queued, inFlight, workers);
    }

    private void ReplyWaiters()
    {
        ReportGauges();
        if (_readyWaiters.Count == 0 && _idleWaiters.Count == 0 && _stopWaiters.Count == 0)
            return; // the usual case, after each result: nobody to tell
        var status = Status();
        if (_readyWaiters.Count > 0 && (status.ReadyWorkers >= _settings.Processes || _brokenReason is not null || _stopping))
        {
            foreach (var w in _readyWaiters) w.Tell(status);
            _readyWaiters.Clear();
        }
        if (_idleWaiters.Count > 0 && (_ledger.ActiveCalls == 0 || _brokenReason is not null || Stalled()))
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
        _ledger.HoldsNoChunk && Stopwatch.GetElapsedTime(_ledger.LastProgress) > _settings.WorkerShutdownTimeout;

    private sealed class IdleCheck
    {
        public static IdleCheck Instance { get; } = new();
        private IdleCheck() { }
    }
}
