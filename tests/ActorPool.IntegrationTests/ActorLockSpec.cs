using ActorPool.IntegrationTests.Support;
using Xunit;

namespace ActorPool.IntegrationTests;

/// <summary>ActorLock, ActorRLock and ActorSemaphore across worker processes (the lock manager is a cluster singleton here).</summary>
[Collection("processes")]
public sealed class ActorLockSpec
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_no_wait_acquire_must_answer_at_once_when_another_thread_of_this_process_holds_the_lock()
    {
        // The lock stays cached in this process after its first grant; held by one thread, another's acquire(False)
        // is answered here and now (it waited 30 s), and a timeout beside blocking: false is ignored, as multiprocessing does.
        var lk = new ActorLock();
        Assert.True(lk.Acquire(timeout: Bound));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(await Task.Run(() => lk.Acquire(blocking: false)));
        Assert.False(await Task.Run(() => lk.Acquire(blocking: false, timeout: TimeSpan.FromSeconds(5))));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"no-wait acquires took {clock.Elapsed}");
        var waiter = Task.Run(() => lk.Acquire(timeout: Bound)); // a waiter ahead: no-wait still answers at once
        await Task.Delay(200);
        clock.Restart();
        Assert.False(await Task.Run(() => lk.Acquire(blocking: false)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"a no-wait acquire behind a waiter took {clock.Elapsed}");
        lk.Release();
        Assert.True(await waiter.WaitAsync(Bound));
        lk.Release();
        Assert.True(lk.Acquire(blocking: false));
        lk.Release();
    }

    [Fact]
    public async Task A_lock_must_exclude_other_processes_while_held()
    {
        var lk = new ActorLock();
        var file = Path.Combine(Path.GetTempPath(), $"actorpool-lock-{Guid.NewGuid():N}.log");
        var pool = new Pool(2);
        using var terminating = new Terminating(pool);
        try
        {
            await pool.WaitForWorkersAsync().WaitAsync(Bound);
            var pids = await pool.MapAsync(w => LockWork.AppendUnderLock(lk, file, w, 40), [0, 1], chunkSize: 1).WaitAsync(Bound);
            Assert.Equal(2, pids.Distinct().Count());

            var lines = File.ReadAllLines(file);
            Assert.Equal(2 * 2 * 40, lines.Length);
            for (var i = 0; i < lines.Length; i += 2)
            {
                // Every start is followed by its own end: no other record in between.
                Assert.StartsWith("start ", lines[i]);
                Assert.Equal("end " + lines[i]["start ".Length..], lines[i + 1]);
            }
            Assert.Equal(2, lines.Select(l => l.Split(' ')[1]).Distinct().Count()); // both workers wrote
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task A_process_that_takes_the_lock_again_and_again_must_not_starve_another_that_waits_for_it()
    {
        // A holder may keep the lock for a few milliseconds after another process asks for it (a hand-over costs a
        // round trip), never longer: the other one gets it while the first goes on taking it as fast as it can.
        var lk = new ActorLock();
        var folder = Directory.CreateTempSubdirectory("actorpool-lock-spin-").FullName;
        var pool = new Pool(2);
        using var terminating = new Terminating(pool);
        try
        {
            await pool.WaitForWorkersAsync().WaitAsync(Bound);
            var spinner = pool.ApplyAsync(() => LockWork.SpinUntil(lk, folder));
            var taker = pool.ApplyAsync(() => LockWork.TakeWhileOthersSpin(lk, folder, 50));
            var (cycles, stoppedByTaker) = await spinner.WaitAsync(Bound + Bound);
            Assert.Equal(50, await taker.WaitAsync(Bound));
            Assert.True(stoppedByTaker, "the spinning process ran for its whole minute: the other one was starved of the lock");
            Assert.True(cycles > 50, $"the spinner took the lock only {cycles} times: it did not contend");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public async Task A_lock_whose_holder_is_killed_must_go_to_the_waiter_within_2_seconds_marked_abandoned()
    {
        var lk = new ActorLock();
        var marker = Path.Combine(Path.GetTempPath(), $"actorpool-holder-{Guid.NewGuid():N}");
        var pool = new Pool(new PoolOptions { Processes = 1, MaxTaskRetries = 0 });
        using var terminating = new Terminating(pool);
        try
        {
            var holding = pool.ApplyAsync(() => LockWork.HoldForever(lk, marker));
            Assert.True(await Processes.WaitUntil(() => File.Exists(marker) && File.ReadAllText(marker).Contains(' '), Bound), "the worker never held the lock");
            var parts = File.ReadAllText(marker).Split(' ');
            var (holderPid, holderToken) = (int.Parse(parts[0]), long.Parse(parts[1]));
            Assert.False(lk.Acquire(blocking: false)); // held by the worker

            Processes.Kill9(holderPid);
            Assert.True(lk.Acquire(true, TimeSpan.FromSeconds(2)), "the lock was not released within 2 s of its holder's death");
            Assert.True(lk.Abandoned);
            Assert.True(lk.FencingToken > holderToken);
            await Assert.ThrowsAsync<WorkerLostException>(() => holding.WaitAsync(Bound));
            lk.Release();

            // Released normally, it is not abandoned.
            using (var held = await lk.AcquireAsync(Bound))
                Assert.False(held.Abandoned);
        }
        finally
        {
            File.Delete(marker);
        }
    }

    [Fact]
    public void A_reentrant_lock_must_count_its_owner_thread_and_refuse_other_releasers()
    {
        var rlock = new ActorRLock();
        Assert.True(rlock.Acquire());
        Assert.True(rlock.Acquire());
        Assert.Equal(2, rlock.RecursionCount);
        InvalidOperationException? other = null;
        var thread = new Thread(() => other = Assert.Throws<InvalidOperationException>(rlock.Release));
        thread.Start();
        Assert.True(thread.Join(Bound));
        Assert.Contains("only be released by the thread that holds it", other!.Message);
        rlock.Release();
        rlock.Release();
        Assert.Throws<InvalidOperationException>(rlock.Release);
        using (rlock.Lock(Bound))
            Assert.Equal(1, rlock.RecursionCount);

        // Two handles of one named lock in one process share its owner and count (as copies sent to a worker would).
        var name = $"rlock-{Guid.NewGuid():N}";
        var first = new ActorRLock(name);
        var second = new ActorRLock(name);
        Assert.True(first.Acquire());
        Assert.True(second.Acquire(blocking: false));
        Assert.Equal(2, first.RecursionCount);
        second.Release();
        first.Release();
        Assert.Equal(0, first.RecursionCount);
        Assert.Contains("already a reentrant lock", Assert.Throws<InvalidOperationException>(() => new ActorLock(name).Acquire()).Message);
    }

    [Fact]
    public async Task A_bounded_semaphore_must_grant_at_most_its_permits_first_come_first_served()
    {
        var sem = new ActorBoundedSemaphore(2);
        var a = await sem.AcquireAsync(Bound);
        var b = await sem.AcquireAsync(Bound);
        Assert.True(b.FencingToken > a.FencingToken);
        Assert.False(sem.Acquire(blocking: false));
        var waiting = sem.AcquireAsync(Bound);
        await Task.Delay(100);
        Assert.False(waiting.IsCompleted);
        a.Dispose();
        (await waiting.WaitAsync(Bound)).Dispose();
        b.Dispose();
        Assert.Throws<InvalidOperationException>(sem.Release); // more releases than acquisitions
        Assert.Throws<ArgumentOutOfRangeException>(() => new ActorBoundedSemaphore(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new ActorSemaphore(-1));
        Assert.Throws<ArgumentException>(() => new ActorLock(" "));
    }

    [Fact]
    public async Task A_semaphore_of_zero_must_signal_between_processes_and_count_past_its_start()
    {
        // Python's Semaphore(0): one side waits in acquire, another process releases (it was refused: "at least 1 permit").
        var signal = new ActorSemaphore(0);
        Assert.False(signal.Acquire(blocking: false));
        var waiting = Task.Run(() => signal.Acquire(timeout: Bound));
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        var pool = new Pool(1);
        using var terminating = new Terminating(pool);
        var releaser = await pool.ApplyAsync(() => LockWork.ReleaseOnce(signal)).WaitAsync(Bound); // a process that never acquired it
        Assert.NotEqual(Environment.ProcessId, releaser);
        Assert.True(await waiting.WaitAsync(Bound));
        // The value may rise above where it started: two releases, two acquisitions that do not wait.
        signal.Release();
        signal.Release();
        Assert.True(signal.Acquire(blocking: false));
        Assert.True(signal.Acquire(blocking: false));
        Assert.False(signal.Acquire(blocking: false));
    }

    [Fact]
    public void A_name_must_keep_one_kind_of_lock()
    {
        var name = $"shared-{Guid.NewGuid():N}";
        var lk = new ActorLock(name);
        Assert.True(lk.Acquire());
        lk.Release();
        var error = Assert.Throws<InvalidOperationException>(() => new ActorSemaphore(3, name).Acquire());
        Assert.Contains("already a lock", error.Message);
    }
}

/// <summary>What the lock tests' worker tasks do.</summary>
public static class LockWork
{
    public static int ReleaseOnce(ActorSemaphore semaphore)
    {
        semaphore.Release();
        return Environment.ProcessId;
    }

    public static int AppendUnderLock(ActorLock lk, string file, int worker, int times)
    {
        for (var i = 0; i < times; i++)
        {
            using (lk.Lock(TimeSpan.FromSeconds(60)))
            {
                File.AppendAllText(file, $"start {Environment.ProcessId} {i}\n");
                Thread.Sleep(1);
                File.AppendAllText(file, $"end {Environment.ProcessId} {i}\n");
            }
        }
        return Environment.ProcessId;
    }

    /// <summary>Takes and releases the lock as fast as it can until <c>done</c> appears in <paramref name="folder"/> (at most a minute).</summary>
    public static (long Cycles, bool Stopped) SpinUntil(ActorLock lk, string folder)
    {
        var done = Path.Combine(folder, "done");
        var end = DateTime.UtcNow.AddMinutes(1);
        long cycles = 0;
        File.WriteAllText(Path.Combine(folder, "spinning"), "");
        while (DateTime.UtcNow < end)
        {
            for (var i = 0; i < 1000; i++)
            {
                lk.Acquire();
                lk.Release();
            }
            cycles += 1000;
            if (File.Exists(done))
                return (cycles, true);
        }
        return (cycles, false);
    }

    /// <summary>Once the spinner runs, takes the lock <paramref name="times"/> times, then says it is done.</summary>
    public static int TakeWhileOthersSpin(ActorLock lk, string folder, int times)
    {
        while (!File.Exists(Path.Combine(folder, "spinning")))
            Thread.Sleep(5);
        var taken = 0;
        for (var i = 0; i < times; i++)
        {
            if (lk.Acquire(timeout: TimeSpan.FromSeconds(30)))
            {
                taken++;
                lk.Release();
            }
        }
        File.WriteAllText(Path.Combine(folder, "done"), "");
        return taken;
    }

    public static int HoldForever(ActorLock lk, string marker)
    {
        lk.Acquire();
        File.WriteAllText(marker + ".tmp", $"{Environment.ProcessId} {lk.FencingToken}");
        File.Move(marker + ".tmp", marker);
        Thread.Sleep(TimeSpan.FromMinutes(5));
        return 0;
    }
}
