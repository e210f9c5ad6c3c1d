using ActorPool.Coordination;
using Xunit;

namespace ActorPool.Tests.Coordination;

/// <summary>A worker's life as the coordinator sees it: the phases, their order, and the two facts that outlive a phase.</summary>
public sealed class WorkerHandleSpec : Akka.TestKit.Xunit2.TestKit
{
    [Fact]
    public void A_worker_must_go_launching_linked_warming_ready_and_show_it()
    {
        var w = new WorkerHandle("w1");
        Assert.Equal(WorkerPhase.Launching, w.Phase);
        Assert.False(w.BeginWarmUp()); // not reachable yet
        w.Attach(TestActor, TestActor);
        Assert.Equal(WorkerPhase.Linked, w.Phase);
        Assert.True(w.BeginWarmUp());
        Assert.False(w.BeginWarmUp()); // once
        Assert.Equal(WorkerPhase.Warming, w.Phase);
        Assert.Equal(ActorPool.WorkerState.Starting, w.State);
        Assert.True(w.EndWarmUp());
        Assert.False(w.EndWarmUp());
        Assert.Equal(WorkerPhase.Ready, w.Phase);
        Assert.True(w.WasReady);
        Assert.Equal(ActorPool.WorkerState.Idle, w.State);
        w.Running.Add(new ActorPool.Protocol.ChunkId(1, 0));
        Assert.Equal(ActorPool.WorkerState.Busy, w.State);
    }

    [Fact]
    public void A_worker_drained_while_warming_must_still_have_its_warm_up_answer_taken_and_stay_draining()
    {
        var w = new WorkerHandle("w1");
        w.Attach(TestActor, TestActor);
        Assert.True(w.BeginWarmUp());
        Assert.True(w.Drain());
        Assert.False(w.Drain());
        Assert.True(w.EndWarmUp());
        Assert.Equal(WorkerPhase.Draining, w.Phase);
        Assert.True(w.WasReady && w.Leaving);
        Assert.Equal(ActorPool.WorkerState.Draining, w.State);
        Assert.True(w.Retire());
        Assert.False(w.Retire());
        Assert.False(w.Drain()); // retiring wins
        Assert.Equal(ActorPool.WorkerState.Retiring, w.State);
    }

    [Fact]
    public void A_worker_that_never_was_ready_must_say_so_after_it_leaves()
    {
        var w = new WorkerHandle("w1");
        Assert.True(w.Drain());
        Assert.False(w.WasReady);
        w.MarkStartTimedOut();
        Assert.True(w.StartTimedOut);
        w.Gone();
        Assert.Equal(WorkerPhase.Gone, w.Phase);
        Assert.False(w.Retire());
        Assert.False(w.BeginWarmUp());
    }
}
