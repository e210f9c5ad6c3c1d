using ActorPool.Protocol;
using Akka.Actor;
using Akka.Cluster;
using Akka.Event;
using static Akka.Cluster.ClusterEvent;

namespace ActorPool.Worker;

/// <summary>What a standalone worker node runs: how many worker actors, with which secret, for which coordinators.</summary>
internal sealed record NodeSettings(int Workers, string Secret, string CoordinatorRole, int MaxFrameSize, TimeSpan DrainTimeout);

/// <summary>
/// Stop taking work, wait (at most the drain timeout) until the node's workers run nothing, then leave the cluster.
/// </summary>
internal sealed class DrainNode
{
    public static DrainNode Instance { get; } = new();
    private DrainNode() { }
}

/// <summary>
/// The root actor of a standalone worker node. For every cluster member with the coordinator role that is up, it
/// runs <see cref="NodeSettings.Workers"/> worker actors (each with its own task thread) that register with that
/// member's coordinator. A worker that retires (max-tasks-per-child) or loses its coordinator is replaced while the
/// coordinator's member is up. A refusal that will not change (a wrong secret, a missing role) ends the node with
/// <see cref="WorkerProgram.ExitRejected"/>; when the last coordinator it served is removed, the node leaves too.
/// </summary>
internal sealed class NodeHost : ReceiveActor, IWithTimers
{
    public ITimerScheduler Timers { get; set; } = null!;

    private readonly NodeSettings _settings;
    private readonly ILoggingAdapter _log = Context.GetLogger();
    private readonly Dictionary<Address, IActorRef?[]> _served = new();
    private readonly Dictionary<IActorRef, (Address Coordinator, int Slot, WorkerNode.ExitCode Exit)> _workers = new();
    private readonly string _self;
    private readonly Dictionary<Address, TimeSpan> _backoff = new();
    private int _generation;
    private bool _leaving;

    /// <summary>The node's exit code: 0, or <see cref="WorkerProgram.ExitRejected"/> after a final refusal.</summary>
    public WorkerNode.ExitCode Exit { get; }

    public NodeHost(NodeSettings settings, WorkerNode.ExitCode exit)
    {
        _settings = settings;
        Exit = exit;
        var address = Cluster.Get(Context.System).SelfAddress;
        _self = $"{address.Host}:{address.Port}";

        Receive<MemberUp>(m =>
        {
            if (m.Member.HasRole(_settings.CoordinatorRole) && !_leaving && !_served.ContainsKey(m.Member.Address))
            {
                _served[m.Member.Address] = new IActorRef?[_settings.Workers];
                for (var slot = 0; slot < _settings.Workers; slot++)
                    StartWorker(m.Member.Address, slot);
                Console.Out.WriteLine($"ActorPool node {_self}: serving the coordinator at {m.Member.Address} with {_settings.Workers} worker(s).");
            }
        });
        Receive<MemberRemoved>(m =>
        {
            _backoff.Remove(m.Member.Address);
            if (!_served.Remove(m.Member.Address, out var workers))
                return;
            foreach (var w in workers)
                if (w is not null)
                    Context.Stop(w);
            if (_served.Count == 0)
            {
                Console.Out.WriteLine($"ActorPool node {_self}: the coordinator at {m.Member.Address} has left the cluster; this node leaves too.");
                Leave();
            }
        });
        Receive<IMemberEvent>(_ => { });
        Receive<CurrentClusterState>(_ => { });
        Receive<Terminated>(m =>
        {
            if (!_workers.Remove(m.ActorRef, out var w))
                return;
            if (_served.TryGetValue(w.Coordinator, out var slots) && ReferenceEquals(slots[w.Slot], m.ActorRef))
                slots[w.Slot] = null;
            if (w.Exit.Value == WorkerProgram.ExitRejected)
            {
                Exit.Set(WorkerProgram.ExitRejected);
                Console.Error.WriteLine($"ActorPool node {_self}: the coordinator at {w.Coordinator} refused this node's workers; the node stops.");
                Leave();
                return;
            }
            // Retired, or its coordinator stopped, or the pool would not take it for now (shutting down, broken): a fresh
            // worker takes its place while the coordinator's member is up; after a refusal, ever later (up to 30 s).
            if (_leaving || !_served.ContainsKey(w.Coordinator))
                return;
            var backoff = _backoff.GetValueOrDefault(w.Coordinator, TimeSpan.Zero);
            backoff = w.Exit.Value == WorkerProgram.ExitRetryLater
                ? TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(30).Ticks, Math.Max(TimeSpan.FromSeconds(1).Ticks, backoff.Ticks * 2)))
                : TimeSpan.Zero;
            _backoff[w.Coordinator] = backoff;
            Timers.StartSingleTimer((w.Coordinator, w.Slot), new Restart(w.Coordinator, w.Slot), backoff + TimeSpan.FromMilliseconds(100));
        });
        Receive<DrainNode>(_ =>
        {
            if (_leaving)
                return;
            _leaving = true;
            var workers = _workers.Keys.ToList();
            var timeout = _settings.DrainTimeout;
            Console.Out.WriteLine($"ActorPool node {_self}: draining {workers.Count} worker(s) (at most {timeout.TotalSeconds:0.#} s), then leaving the cluster.");
            var system = Context.System;
            Task.WhenAll(workers.Select(w => w.AskLocal<WorkerActor.Drained>(WorkerActor.Drain.Instance, timeout)))
                .ContinueWith(t =>
                {
                    Console.Out.WriteLine(t.IsCompletedSuccessfully
                        ? $"ActorPool node {_self}: drained; leaving the cluster."
                        : $"ActorPool node {_self}: still running tasks after {timeout.TotalSeconds:0.#} s (actorpool.node.drain-timeout); leaving: they run again elsewhere.");
                    CoordinatedShutdown.Get(system).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
                }, TaskScheduler.Default);
        });
        Receive<Restart>(m =>
        {
            if (!_leaving && _served.TryGetValue(m.Coordinator, out var slots) && slots[m.Slot] is null)
                StartWorker(m.Coordinator, m.Slot);
        });
    }

    private sealed record Restart(Address Coordinator, int Slot);

    public static Props Props(NodeSettings settings, WorkerNode.ExitCode exit) =>
        Akka.Actor.Props.Create(() => new NodeHost(settings, exit));

    protected override void PreStart() =>
        Cluster.Get(Context.System).Subscribe(Self, SubscriptionInitialStateMode.InitialStateAsEvents, typeof(IMemberEvent));

    protected override void PostStop() => Cluster.Get(Context.System).Unsubscribe(Self);

    private void StartWorker(Address coordinator, int slot)
    {
        // Worker ids are unique across the cluster and across replacements: the coordinator keys its ledger by them.
        var id = $"{_self}/{slot}.{++_generation}";
        var handshake = new WorkerHandshake($"{coordinator}/user/{Coordination.Coordinator.Name}", id, _settings.Secret, 0, _settings.MaxFrameSize);
        var exit = new WorkerNode.ExitCode();
        var worker = Context.ActorOf(Akka.Actor.Props.Create(() => new WorkerActor(handshake, exit, true, null)), $"worker-{slot}-{_generation}");
        Context.Watch(worker);
        _workers[worker] = (coordinator, slot, exit);
        _served[coordinator][slot] = worker;
        _log.Debug("Worker {0} offered to {1}.", id, coordinator);
    }

    private void Leave()
    {
        if (_leaving)
            return;
        _leaving = true;
        CoordinatedShutdown.Get(Context.System).Run(CoordinatedShutdown.ClusterLeavingReason.Instance);
    }
}
