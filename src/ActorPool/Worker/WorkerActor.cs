using System.Collections.Concurrent;
using System.Diagnostics;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;

namespace ActorPool.Worker;

/// <summary>
/// A worker: registers with the coordinator, then hands every <see cref="RunChunk"/> to its own task thread, so
/// blocking user code never runs on Akka's dispatcher. Results go straight from that thread to the coordinator.
/// </summary>
internal sealed class WorkerActor : ReceiveActor, IWithTimers
{
    private readonly WorkerHandshake _handshake;
    private readonly WorkerNode.ExitCode _exit;
    private TaskRunner? _runner;
    private IActorRef? _coordinator;
    private readonly ActorSystem _system;

    public ITimerScheduler Timers { get; set; } = null!;

    private sealed class TryRegister
    {
        public static TryRegister Instance { get; } = new();
        private TryRegister() { }
    }

    /// <summary>
    /// <paramref name="inProcess"/>: the <c>thread</c> start method; this actor lives in the pool's own ActorSystem,
    /// so leaving stops the actor (and calls <paramref name="stopped"/>) instead of ending a process.
    /// </summary>
    public WorkerActor(WorkerHandshake handshake, WorkerNode.ExitCode exit, bool inProcess = false, Action? stopped = null)
    {
        _system = Context.System;
        _self = Self;
        _handshake = handshake;
        _exit = exit;
        _inProcess = inProcess;
        _stopped = stopped;
        _coordinatorInProcess = ActorPath.TryParse(handshake.Coordinator, out var coordinatorPath)
                                && coordinatorPath.Address.Equals(((ExtendedActorSystem)Context.System).Provider.DefaultAddress);

        Receive<TryRegister>(_ => Register());
        // The coordinator proves the secret first; only then does this worker prove it in turn.
        Receive<RegisterChallenge>(m =>
        {
            if (_coordinator is not null || !IsOurCoordinator(Sender) || m.WorkerId != _handshake.WorkerId)
                return;
            if (!Proof.Matches(Proof.Of(_handshake.Secret, "coordinator", _handshake.WorkerId, _nonce, m.ChallengeNonce), m.Proof))
            {
                // Not the pool's coordinator, or one of another cluster: nothing is sent to it. A spawned worker leaves for
                // good; a node's worker tries again later.
                Console.Error.WriteLine($"ActorPool worker {_handshake.WorkerId}: the coordinator at {Sender.Path.Address} does not hold this " +
                                        "worker's secret (a coordinator of another cluster, or this node's secret is wrong); not registering with it.");
                Leave(_handshake.ParentPid == 0 ? WorkerProgram.ExitRetryLater : WorkerProgram.ExitRejected);
                return;
            }
            Sender.Tell(new RegisterWorker(_handshake.WorkerId, Environment.ProcessId, _host, Self, _nonce, m.ChallengeNonce,
                Proof.Of(_handshake.Secret, "worker", _handshake.WorkerId, m.ChallengeNonce, _nonce)), Self);
        });
        // Only the coordinator this worker was started for (or registered with) is obeyed; anything else is dropped.
        Receive<WorkerAccepted>(m =>
        {
            if (_coordinator is not null || !IsOurCoordinator(Sender))
                return;
            Timers.Cancel("register");
            _coordinator = Sender;
            Context.Watch(_coordinator);
            _runner ??= new TaskRunner(_handshake, Self, _coordinator, m.Initializer, OnRunnerRetired) { HardStopped = () => Leave(WorkerProgram.ExitHardLimit) };
        });
        Receive<WorkerRejected>(m =>
        {
            if (!IsOurCoordinator(Sender))
                return;
            if (m.Retry)
            {
                Leave(WorkerProgram.ExitRetryLater); // the pool is shutting down or broken: nothing to say about this worker
                return;
            }
            Console.Error.WriteLine($"ActorPool worker {_handshake.WorkerId}: the pool refused it: {m.Reason}");
            Leave(WorkerProgram.ExitRejected);
        });
        Receive<RunChunk>(m =>
        {
            if (FromCoordinator())
                _runner?.Enqueue(m);
        });
        Receive<RunChunks>(m =>
        {
            if (!FromCoordinator())
                return;
            foreach (var run in m.Chunks)
                _runner?.Enqueue(run);
        });
        Receive<ForgetCall>(m =>
        {
            if (!FromCoordinator())
                return;
            _runner?.CallEnded(m.CallId); // at once: a running task of the call is cancelled
            _runner?.Enqueue(m);
        });
        Receive<Retire>(_ =>
        {
            if (FromCoordinator())
                _runner?.Enqueue(Retire.Instance);
        });
        // A worker node leaving: tell the coordinator, and answer once what it sent before its acknowledgement has run.
        Receive<Drain>(_ =>
        {
            if (!_viaLocal)
                return; // the node asks, from its own process
            _drainWaiters.Add(Sender);
            if (_coordinator is null)
                ReplyDrained();
            else
                _coordinator.Tell(new WorkerDraining(_handshake.WorkerId));
        });
        Receive<DrainAck>(_ =>
        {
            if (FromCoordinator())
                Timers.StartPeriodicTimer("drain", CheckDrained.Instance, TimeSpan.FromMilliseconds(50));
        });
        Receive<CheckDrained>(_ =>
        {
            if (_runner is null || _runner.IsIdle)
                ReplyDrained();
        });
        Receive<Terminated>(m =>
        {
            // The coordinator is gone: nobody will read our results.
            if (m.ActorRef.Equals(_coordinator))
                Leave(WorkerProgram.ExitOk);
        });
    }

    private bool FromCoordinator() => _coordinator is not null && Sender.Equals(_coordinator) && (_viaLocal || !_coordinatorInProcess);

    /// <summary>
    /// Whether <paramref name="sender"/> is the coordinator the handshake named (its address and path). A coordinator in
    /// this process (the thread start method) speaks only in <see cref="Local"/> wrappers: over plain remoting, a
    /// stranger could claim its address.
    /// </summary>
    private bool IsOurCoordinator(IActorRef sender) =>
        ActorPath.TryParse(_handshake.Coordinator, out var expected) && sender.Path.Address.Equals(expected.Address)
        && sender.Path.Elements.SequenceEqual(expected.Elements) && (_viaLocal || !_coordinatorInProcess);

    private bool _viaLocal;
    private readonly bool _coordinatorInProcess;

    protected override bool AroundReceive(Receive receive, object message)
    {
        if (message is not Local local)
            return base.AroundReceive(receive, message);
        if (!local.IsGenuine)
            return true;
        _viaLocal = true;
        try
        {
            return base.AroundReceive(receive, local.Message);
        }
        finally
        {
            _viaLocal = false;
        }
    }

    /// <summary>Asks a worker to stop taking work; it replies <see cref="Drained"/> when it runs nothing.</summary>
    public sealed class Drain
    {
        public static Drain Instance { get; } = new();
        private Drain() { }
    }

    /// <summary>The reply to <see cref="Drain"/>.</summary>
    public sealed class Drained
    {
        public static Drained Instance { get; } = new();
        private Drained() { }
    }

    private sealed class CheckDrained
    {
        public static CheckDrained Instance { get; } = new();
        private CheckDrained() { }
    }

    private readonly List<IActorRef> _drainWaiters = new();

    private void ReplyDrained()
    {
        Timers.Cancel("drain");
        foreach (var waiter in _drainWaiters)
            waiter.Tell(Drained.Instance);
        _drainWaiters.Clear();
    }

    protected override void PreStart()
    {
        Register();
        Timers.StartPeriodicTimer("register", TryRegister.Instance, TimeSpan.FromSeconds(1));
    }

    protected override void PostStop()
    {
        _runner?.Stop();
        if (_inProcess)
            _stopped?.Invoke();
    }

    private readonly IActorRef _self;
    private readonly string _nonce = Proof.NewNonce();
    private readonly string _host = ((ExtendedActorSystem)Context.System).Provider.DefaultAddress.Host ?? "127.0.0.1";
    private readonly bool _inProcess;
    private readonly Action? _stopped;

    /// <summary>Ends this worker: its process, or (thread start method, worker node) just this actor. Thread-safe.</summary>
    private void Leave(int code)
    {
        if (_inProcess)
        {
            _exit.Set(code);
            _self.Tell(PoisonPill.Instance);
            return;
        }
        _exit.Set(code);
        // Puts of its tasks reach their queues before the worker's ActorSystem goes (bounded), off this actor's thread.
        var system = _system;
        Task.Run(() =>
        {
            WorkerNode.FlushPuts(_handshake);
            system.Terminate();
        });
    }

    private void Register()
    {
        var self = Self;
        Context.ActorSelection(_handshake.Coordinator).Tell(new RegisterWorker(_handshake.WorkerId, Environment.ProcessId, _host, self, _nonce), self);
    }

    // Called on the task thread: only thread-safe members here.
    private void OnRunnerRetired() => Leave(WorkerProgram.ExitOk);
}

/// <summary>
/// The thread that runs user code in a worker, one chunk at a time, in arrival order. Holds the deserialized
/// functions of the calls it has seen.
/// </summary>
internal sealed class TaskRunner
{
    private readonly string _workerId;
    private readonly BlockingCollection<object> _inbox = new();
    private readonly Dictionary<long, TaskFunction> _functions = new();
    private readonly Dictionary<long, TaskFunction> _shared = new();
    private const int MaxShared = 256;
    private readonly Action _retired;
    private readonly int _maxPayload;

    private readonly string? _spillFolder;
    private readonly WorkerHandshake _handshake;
    private DataLink? _link;

    /// <summary>A runner for a worker registered through Akka.Remote, which sends its results the same way.</summary>
    public TaskRunner(WorkerHandshake handshake, IActorRef self, IActorRef coordinator, byte[] initializer, Action retired)
        : this(handshake, retired, _ => { }, link: null)
    {
        _channel = new RemoteChannel(coordinator, self);
        new Thread(() => Loop(initializer)) { IsBackground = true, Name = "actorpool-task-runner" }.Start();
    }

    /// <summary>
    /// A runner on the pool's data link, started before the worker's ActorSystem: it is accepted, gets the
    /// initializer and all its work over the link.
    /// </summary>
    public TaskRunner(WorkerHandshake handshake, DataLink link, Action retired, Action<string> rejected)
        : this(handshake, retired, rejected, link)
    {
        new Thread(() => Loop(null)) { IsBackground = true, Name = "actorpool-task-runner" }.Start();
    }

    private TaskRunner(WorkerHandshake handshake, Action retired, Action<string> rejected, DataLink? link)
    {
        _handshake = handshake;
        _spillFolder = handshake.SpillFolder;
        Execution.Spill.Trust(handshake.SpillFolder);
        _maxPayload = handshake.MaxFrameSize - 64 * 1024;
        _workerId = handshake.WorkerId;
        _link = link;
        if (link is not null)
            _channel = link;
        _retired = retired;
        _rejected = rejected;
    }

    private readonly Action<string> _rejected;

    /// <summary>Completes when the first chunk (the pool's warm-up) has run, or the runner has stopped.</summary>
    public Task FirstChunkDone => _firstChunk.Task;

    private readonly TaskCompletionSource _firstChunk = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private long _busySince; // Stopwatch timestamp while a chunk runs, else 0

    /// <summary>Connects to the pool's data link and says who this worker is; null when there is none to reach.</summary>
    public static DataLink? Connect(WorkerHandshake handshake)
    {
        if (handshake.DataSocket is not { } path)
            return null;
        try
        {
            var link = DataLink.Connect(path);
            if (link.TrySend(new DataLinkHello(handshake.WorkerId, handshake.Secret)))
                return link;
            link.Dispose();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
        }
        return null;
    }

    /// <summary>
    /// Called when a task runs past its hard limit, after its timeout has been reported: the worker must go (its task
    /// thread cannot be stopped). Default: as when retired.
    /// </summary>
    public Action? HardStopped { get; init; }

    /// <summary>The pool says its tasks use queues or locks of these hosts (on the link's reader thread).</summary>
    public Action<string[]>? Warm { get; init; }

    private readonly TaskClock _clock = new();
    private Thread? _watchdog;

    /// <summary>Any thread: the call ended; its running task's token fires and its queued chunks are skipped.</summary>
    public void CallEnded(long callId) => _clock.CallEnded(callId);

    public void Enqueue(object message)
    {
        if (!_inbox.IsAddingCompleted)
            _inbox.Add(message);
    }

    public void Stop() => _inbox.CompleteAdding();

    /// <summary>Runs nothing and holds nothing to run.</summary>
    public bool IsIdle => Volatile.Read(ref _busySince) == 0 && _inbox.Count == 0;

    /// <summary>To the coordinator on this runner's channel (the data link, or Akka.Remote for a node's worker).</summary>
    private void Send(object message) =>
        _channel.TrySend(message); // false: the pool is gone, and this process exits with it

    private IWorkerChannel _channel = null!;

    /// <summary>Reads work from the data link until it closes (the pool closed it, or is gone).</summary>
    private void ReadLink(DataLink link)
    {
        while (link.Receive() is { } message)
        {
            if (message is LinkPing ping)
            {
                link.TrySend(new LinkPong(ping.Seq)); // from this thread: the answer does not wait for a running task
                continue;
            }
            if (message is LinkWarm warm)
            {
                Hosting.LinkRelayClient.Current?.RelayTo(warm.RelayHost);
                Warm?.Invoke(warm.Hosts);
                continue;
            }
            if (message is HandleOpened or HandleReply or HandleGone)
            {
                Hosting.LinkRelayClient.Current?.OnFrame(message);
                continue;
            }
            if (message is RunChunks batch)
            {
                foreach (var run in batch.Chunks)
                    Enqueue(run);
            }
            else
            {
                if (message is ForgetCall forget)
                    CallEnded(forget.CallId); // at once: a running task of the call is cancelled
                Enqueue(message);
            }
        }
        // Nothing more will come, and nobody would read results.
        Hosting.LinkRelayClient.Current?.OnClosed();
        _retired();
    }

    private void Loop(byte[]? initializer)
    {
        try
        {
            LoopCore(initializer);
        }
        finally
        {
            _firstChunk.TrySetResult();
        }
    }

    private void LoopCore(byte[]? initializer)
    {
        if (_link is { } link)
        {
            switch (link.Receive())
            {
                case WorkerAccepted accepted:
                    initializer = accepted.Initializer;
                    break;
                case WorkerRejected rejected:
                    _rejected(rejected.Reason);
                    return;
                default:
                    _retired(); // the pool is gone
                    return;
            }
            new Thread(() => ReadLink(link)) { IsBackground = true, Name = "actorpool-data-link" }.Start();
        }
        if (initializer!.Length > 0)
        {
            try
            {
                ((PoolInitializer)Payload.Deserialize(initializer)!).Run();
            }
            catch (Exception e)
            {
                Send(new WorkerInitFailed(_workerId, TaskError.From(e)));
                return;
            }
        }
        Send(new WorkerReady(_workerId));

        foreach (var message in _inbox.GetConsumingEnumerable())
        {
            switch (message)
            {
                case RunChunk run:
                    Volatile.Write(ref _busySince, Stopwatch.GetTimestamp());
                    if (run.HardMs > 0)
                        StartWatchdog();
                    if (_clock.BeginChunk(run))
                    {
                        try
                        {
                            Completed(Run(run));
                        }
                        finally
                        {
                            _clock.EndChunk();
                        }
                    }
                    else
                    {
                        // Its call has ended (cancelled): answer at once so the pool frees the slot.
                        Completed(new ChunkDone(run.Chunk, run.Attempt, Blob.Of(Payload.Serialize(Array.Empty<object>())), 0,
                            TaskError.From(new OperationCanceledException("The call was cancelled before this chunk ran.")), 0));
                    }
                    Volatile.Write(ref _busySince, 0);
                    _firstChunk.TrySetResult();
                    break;
                case ForgetCall forget:
                    _functions.Remove(forget.CallId);
                    break;
                case Retire:
                    Flush();
                    _retired();
                    return;
            }
        }
    }

    // Results of short chunks run back to back travel together: held while more chunks wait in the inbox, for at
    // most MaxHold (a timer sends them even while a long task runs) and MaxBatch results.
    private const int MaxBatch = 128;
    private static readonly TimeSpan MaxHold = TimeSpan.FromMilliseconds(1);
    private readonly List<ChunkDone> _done = [];
    private readonly Lock _doneLock = new();
    private Timer? _flushTimer;
    private bool _flushArmed;

    /// <summary>One thread per worker that has had a task with a hard limit: it stops the worker when one overruns.</summary>
    private void StartWatchdog()
    {
        if (_watchdog is not null)
            return;
        _watchdog = new Thread(() =>
        {
            while (!_inbox.IsCompleted)
            {
                Thread.Sleep(20);
                if (_clock.Overdue() is not { } overdue)
                    continue;
                var (chunk, index, results, ran) = overdue;
                Blob partial;
                try
                {
                    var done = Array.CreateInstance(results.GetType().GetElementType()!, index);
                    Array.Copy(results, done, index);
                    partial = Payload.SerializeToBlob(done, _spillFolder);
                }
                catch (Exception)
                {
                    partial = Blob.Of(Payload.Serialize(Array.Empty<object>()));
                    index = 0;
                }
                var message = $"ran past its hard limit of {TaskClock.Seconds(chunk.HardMs)} (it had run {ran.TotalSeconds:0.###} s); " +
                              "the worker was stopped and is replaced";
                lock (_doneLock)
                {
                    FlushLocked();
                    Send(new ChunkDone(chunk.Chunk, chunk.Attempt, partial, index,
                        new TaskError(typeof(TaskTimeoutException).FullName!, message, TaskClock.HardMarker), (long)(ran.TotalSeconds * Stopwatch.Frequency)));
                }
                Thread.Sleep(100); // let the report leave before the worker does
                (HardStopped ?? _retired)();
                return;
            }
        })
        { IsBackground = true, Name = "actorpool-task-watchdog" };
        _watchdog.Start();
    }

    private void Completed(ChunkDone done)
    {
        if (_clock.Abandoned)
            return; // a task ran past its hard limit: the pool has been told, and this worker is going
        lock (_doneLock)
        {
            _done.Add(done);
            if (_inbox.Count == 0 || _done.Count >= MaxBatch)
            {
                FlushLocked();
            }
            else if (!_flushArmed)
            {
                _flushArmed = true;
                _flushTimer ??= new Timer(static r => ((TaskRunner)r!).Flush(), this, Timeout.Infinite, Timeout.Infinite);
                _flushTimer.Change(MaxHold, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void Flush()
    {
        lock (_doneLock)
            FlushLocked();
    }

    private void FlushLocked()
    {
        _flushArmed = false;
        if (_done.Count == 0)
            return;
        Send(_done.Count == 1 ? _done[0] : new ChunksDone(_done.ToArray()));
        _done.Clear();
    }

    private ChunkDone Run(RunChunk m)
    {
        var started = Stopwatch.GetTimestamp();
        TaskFunction? function;
        object? items;
        try
        {
            if (m.FunctionKey != 0 && _shared.TryGetValue(m.FunctionKey, out var shared))
            {
                _functions[m.Chunk.CallId] = shared;
            }
            else if (m.Function.Length > 0)
            {
                var fn = (TaskFunction)Payload.Deserialize(m.Function)!;
                _functions[m.Chunk.CallId] = fn;
                if (m.FunctionKey != 0)
                {
                    if (_shared.Count >= MaxShared)
                        _shared.Clear();
                    _shared[m.FunctionKey] = fn;
                }
            }
            if (!_functions.TryGetValue(m.Chunk.CallId, out function))
                return Failed(m, new InvalidOperationException($"Worker {_workerId} was sent {m.Chunk} without its function."), started);
            items = Spill.Unpack(m.Items);
        }
        catch (Exception e)
        {
            return Failed(m, new NotSendableException($"Worker {_workerId} could not rebuild the task's function or arguments: {e.GetBaseException().Message}", e), started);
        }

        ChunkOutcome outcome;
        try
        {
            outcome = function.Run(items!, _clock);
        }
        catch (Exception e)
        {
            return Failed(m, new InvalidOperationException($"Worker {_workerId} could not run {m.Chunk}: {e.Message}", e), started);
        }
        Blob results;
        try
        {
            Payload.CheckResults(outcome.Results, m.Chunk.ToString());
        }
        catch (NotSendableException e)
        {
            return Failed(m, e, started);
        }
        try
        {
            results = Payload.SerializeToBlob(outcome.Results, _spillFolder);
        }
        catch (Exception e)
        {
            return Failed(m, new NotSendableException($"A result of {m.Chunk} cannot be serialized to send back: {e.GetBaseException().Message}", e), started);
        }
        if (!results.IsFile && results.Inline.Length > _maxPayload)
            return Failed(m, new NotSendableException(
                $"The results of {m.Chunk} serialize to {results.Inline.Length:N0} bytes, more than a message may carry ({_maxPayload:N0}; " +
                "akka.remote.dot-netty.tcp.maximum-frame-size). Use a smaller chunkSize, or raise the frame size in PoolOptions.Config."), started);
        return new ChunkDone(m.Chunk, m.Attempt, results, outcome.Completed,
            outcome.Error is null ? null : TaskError.From(outcome.Error), Stopwatch.GetTimestamp() - started);
    }

    private static ChunkDone Failed(RunChunk m, Exception e, long started) =>
        new(m.Chunk, m.Attempt, Blob.Of(Payload.Serialize(Array.Empty<object>())), 0, TaskError.From(e), Stopwatch.GetTimestamp() - started);
}
