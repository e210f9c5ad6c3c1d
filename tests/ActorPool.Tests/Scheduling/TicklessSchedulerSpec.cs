using System.Diagnostics;
using ActorPool.Configuration;
using ActorPool.Logging;
using Akka.Actor;
using Akka.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace ActorPool.Tests.Scheduling;

/// <summary>
/// The scheduler of the ActorSystems ActorPool creates: what Akka's scheduler promises (once, repeatedly, cancelled,
/// dropped at termination), without a tick: nothing pending when nothing is due.
/// </summary>
public class TicklessSchedulerSpec() : Akka.TestKit.Xunit2.TestKit(
    "akka.scheduler.implementation = \"ActorPool.TicklessScheduler, ActorPool\"\nakka.actor.provider = local")
{
    private TicklessScheduler Scheduler => Assert.IsType<TicklessScheduler>(Sys.Scheduler);

    [Fact]
    public async Task The_systems_a_pool_creates_must_use_it()
    {
        var system = PoolActorSystem.Create("tickless-spec", ConfigurationFactory.ParseString("akka.actor.provider = local").WithFallback(PoolSettings.Reference),
            NullLoggerFactory.Instance);
        try
        {
            Assert.IsType<TicklessScheduler>(system.Scheduler);
        }
        finally
        {
            await system.Terminate().WaitAsync(TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public void A_tell_once_must_arrive_after_its_delay_and_leave_nothing_pending()
    {
        var clock = Stopwatch.StartNew();
        Sys.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(300), TestActor, "due", ActorRefs.NoSender);
        ExpectMsg("due", TimeSpan.FromSeconds(20));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(290), $"arrived after {clock.Elapsed.TotalMilliseconds} ms, before its 300 ms delay");
        AwaitCondition(() => Scheduler.Pending == 0, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_repeated_tell_must_keep_coming_until_cancelled_then_stop()
    {
        var cancel = new Cancelable(Sys.Scheduler);
        Sys.Scheduler.ScheduleTellRepeatedly(TimeSpan.Zero, TimeSpan.FromMilliseconds(50), TestActor, "tick", ActorRefs.NoSender, cancel);
        for (var i = 0; i < 5; i++)
            ExpectMsg("tick", TimeSpan.FromSeconds(20));
        cancel.Cancel();
        AwaitCondition(() => Scheduler.Pending == 0, TimeSpan.FromSeconds(10));
        ReceiveWhile(TimeSpan.FromMilliseconds(100), o => o); // one may have been on its way when cancelled
        ExpectNoMsg(TimeSpan.FromMilliseconds(500));
    }

    [Fact]
    public void An_item_cancelled_before_it_is_due_must_never_run_and_must_be_dropped_at_once()
    {
        var cancel = new Cancelable(Sys.Scheduler);
        Sys.Scheduler.ScheduleTellOnce(TimeSpan.FromMilliseconds(400), TestActor, "never", ActorRefs.NoSender, cancel);
        Sys.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromHours(1), () => TestActor.Tell("an hour"), cancel);
        cancel.Cancel();
        AwaitCondition(() => Scheduler.Pending == 0, TimeSpan.FromSeconds(10));
        ExpectNoMsg(TimeSpan.FromSeconds(1));
    }

    [Fact]
    public void An_item_due_later_than_a_timer_can_wait_must_be_taken_and_stay_pending()
    {
        // Akka and applications schedule far ahead (a year, TimeSpan.MaxValue-like intervals); a .NET timer waits ~49 days at most.
        var cancel = new Cancelable(Sys.Scheduler);
        Sys.Scheduler.ScheduleTellOnce(TimeSpan.FromDays(365), TestActor, "next year", ActorRefs.NoSender, cancel);
        Sys.Scheduler.ScheduleTellRepeatedly(TimeSpan.FromDays(100), TimeSpan.FromDays(100), TestActor, "every 100 days", ActorRefs.NoSender, cancel);
        Assert.Equal(2, Scheduler.Pending);
        ExpectNoMsg(TimeSpan.FromMilliseconds(300));
        cancel.Cancel();
        AwaitCondition(() => Scheduler.Pending == 0, TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_repeated_action_that_throws_must_keep_its_schedule()
    {
        var runs = 0;
        var cancel = new Cancelable(Sys.Scheduler);
        Sys.Scheduler.Advanced.ScheduleRepeatedly(TimeSpan.Zero, TimeSpan.FromMilliseconds(30), () =>
        {
            if (Interlocked.Increment(ref runs) >= 3)
                TestActor.Tell("ran again after throwing");
            throw new InvalidOperationException("scheduled action failed on purpose");
        }, cancel);
        ExpectMsg("ran again after throwing", TimeSpan.FromSeconds(20));
        cancel.Cancel();
    }

    [Fact]
    public async Task Items_pending_when_the_system_terminates_must_be_dropped()
    {
        var system = ActorSystem.Create("tickless-end", "akka.scheduler.implementation = \"ActorPool.TicklessScheduler, ActorPool\"\nakka.actor.provider = local");
        var scheduler = Assert.IsType<TicklessScheduler>(system.Scheduler);
        var ran = 0;
        system.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(500), () => Interlocked.Increment(ref ran));
        Assert.Equal(1, scheduler.Pending);
        await system.Terminate().WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(0, scheduler.Pending);
        await Task.Delay(800);
        Assert.Equal(0, Volatile.Read(ref ran));
        // What is scheduled after that is refused at once (a caller waiting on it would otherwise wait forever).
        Assert.Throws<SchedulerException>(() => system.Scheduler.Advanced.ScheduleOnce(TimeSpan.FromMilliseconds(10), () => Interlocked.Increment(ref ran)));
    }
}
