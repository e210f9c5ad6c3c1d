using System.Collections.Concurrent;
using Akka.Actor;
using Akka.Configuration;
using Akka.Dispatch;
using Akka.Event;

namespace ActorPool;

/// <summary>
/// An Akka.NET scheduler without a tick: every scheduled item is a <see cref="Timer"/> of its own, so an ActorSystem
/// with nothing due does not wake at all. Akka's default scheduler wakes a thread-pool thread every
/// <c>akka.scheduler.tick-duration</c> (10 ms) once anything has been scheduled, as remoting always has; on an idle
/// machine that alone costs several per cent of a core and thousands of context switches a second, for as long as the
/// program runs. The ActorSystems ActorPool creates use this one; an application's own ActorSystem opts in with
/// <c>akka.scheduler.implementation = "ActorPool.TicklessScheduler, ActorPool"</c>.
/// </summary>
/// <remarks>
/// Items run on the thread pool when due (to the precision of .NET timers, about a millisecond), a repeated item at a
/// fixed rate from its first run (an overdue run happens at once, then the rate resumes); an item whose
/// <see cref="ICancelable"/> is cancelled is dropped at once. An item that throws is logged and, if repeated, keeps
/// its schedule. Items still pending when the ActorSystem terminates are dropped; scheduling after that throws
/// <see cref="SchedulerException"/>, as Akka's scheduler does.
/// </remarks>
public sealed class TicklessScheduler : SchedulerBase, IDateTimeOffsetNowTimeProvider, IDisposable
{
    private readonly ConcurrentDictionary<Item, byte> _pending = new();
    private volatile bool _disposed;

    /// <summary>Called by the ActorSystem with <c>akka.scheduler</c>'s configuration and its log.</summary>
    public TicklessScheduler(Config scheduler, ILoggingAdapter log) : base(scheduler, log)
    {
    }

    /// <inheritdoc />
    protected override DateTimeOffset TimeNow => DateTimeOffset.Now;

    /// <inheritdoc />
    public override TimeSpan MonotonicClock => System.Diagnostics.Stopwatch.GetElapsedTime(Started);

    /// <inheritdoc />
    public override TimeSpan HighResMonotonicClock => MonotonicClock;

    private static readonly long Started = System.Diagnostics.Stopwatch.GetTimestamp();

    /// <summary>Items scheduled and neither run (if once), cancelled nor dropped; for tests.</summary>
    internal int Pending => _pending.Count;

    /// <inheritdoc />
    protected override void InternalScheduleTellOnce(TimeSpan delay, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        Start(delay, null, new Tell(receiver, message, sender), cancelable);

    /// <inheritdoc />
    protected override void InternalScheduleTellRepeatedly(TimeSpan initialDelay, TimeSpan interval, ICanTell receiver, object message, IActorRef sender, ICancelable cancelable) =>
        Start(initialDelay, interval, new Tell(receiver, message, sender), cancelable);

    /// <inheritdoc />
    protected override void InternalScheduleOnce(TimeSpan delay, Action action, ICancelable cancelable) =>
        Start(delay, null, new ActionRunnable(action), cancelable);

    /// <inheritdoc />
    protected override void InternalScheduleOnce(TimeSpan delay, IRunnable action, ICancelable cancelable) =>
        Start(delay, null, action, cancelable);

    /// <inheritdoc />
    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, Action action, ICancelable cancelable) =>
        Start(initialDelay, interval, new ActionRunnable(action), cancelable);

    /// <inheritdoc />
    protected override void InternalScheduleRepeatedly(TimeSpan initialDelay, TimeSpan interval, IRunnable action, ICancelable cancelable) =>
        Start(initialDelay, interval, action, cancelable);

    private void Start(TimeSpan delay, TimeSpan? interval, IRunnable work, ICancelable? cancelable)
    {
        // As Akka's own scheduler: once stopped it refuses work, so that whoever waits on it learns so at once.
        if (_disposed)
            throw new SchedulerException("cannot enqueue after timer shutdown");
        if (cancelable is { IsCancellationRequested: true })
            return;
        var item = new Item(this, work, interval, cancelable, MonotonicClock + delay);
        _pending[item] = 0;
        item.Arm(delay, cancelable);
        if (_disposed)
            item.Stop();
    }

    /// <summary>Drops every pending item (the ActorSystem is terminating).</summary>
    public void Dispose()
    {
        _disposed = true;
        foreach (var item in _pending.Keys)
            item.Stop();
    }

    private sealed class Tell(ICanTell receiver, object message, IActorRef sender) : IRunnable
    {
        public void Run() => receiver.Tell(message, sender);

        public void Execute() => Run();
    }

    private sealed class Item(TicklessScheduler owner, IRunnable work, TimeSpan? interval, ICancelable? cancelable, TimeSpan due)
    {
        private Timer? _timer;
        private CancellationTokenRegistration _onCancel;
        private TimeSpan _due = due;
        private int _stopped;

        public void Arm(TimeSpan delay, ICancelable? cancel)
        {
            // Created disarmed, so that the callback always finds its timer.
            _timer = new Timer(static s => ((Item)s!).Fire(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            if (cancel is not null)
                _onCancel = cancel.Token.UnsafeRegister(static s => ((Item)s!).Stop(), this);
            Rearm(delay);
        }

        /// <summary>A .NET timer waits at most about 49 days; a longer wait is taken in steps (see <see cref="Fire"/>).</summary>
        private static readonly TimeSpan LongestWait = TimeSpan.FromMilliseconds(int.MaxValue);

        private void Rearm(TimeSpan wait)
        {
            try
            {
                _timer!.Change(wait > LongestWait ? LongestWait : wait, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // Cancelled meanwhile.
            }
        }

        private void Fire()
        {
            if (Volatile.Read(ref _stopped) != 0)
                return;
            if (owner._disposed || cancelable is { IsCancellationRequested: true })
            {
                Stop();
                return;
            }
            if (_due - owner.MonotonicClock is var early && early > LongestWait / 2)
            {
                Rearm(early); // a wait longer than one timer can take: not due yet
                return;
            }
            try
            {
                work.Run();
            }
            catch (Exception e)
            {
                owner.Log.Error(e, "A scheduled task failed: {0}", e.Message);
            }
            if (interval is not { } every)
            {
                Stop();
                return;
            }
            _due += every;
            var wait = _due - owner.MonotonicClock;
            if (wait < TimeSpan.Zero)
            {
                // Behind (a busy machine): run once now, then keep the rate from here rather than catching up in a burst.
                _due = owner.MonotonicClock;
                wait = TimeSpan.Zero;
            }
            Rearm(wait);
        }

        public void Stop()
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0)
                return;
            _timer?.Dispose();
            _onCancel.Dispose();
            owner._pending.TryRemove(this, out _);
        }
    }
}
