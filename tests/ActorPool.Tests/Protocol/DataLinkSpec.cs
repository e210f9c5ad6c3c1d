using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Protocol;
using Xunit;

namespace ActorPool.Tests.Protocol;

/// <summary>The data link over a real Unix domain socket, with a probe as the coordinator.</summary>
public sealed class DataLinkSpec : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("actorpool-link-spec-").FullName;

    void IDisposable.Dispose()
    {
        Directory.Delete(_folder, recursive: true);
        base.Dispose();
    }

    [Fact]
    public void A_worker_holding_the_secret_must_reach_the_coordinator_and_take_work_in_order()
    {
        var coordinator = CreateTestProbe();
        using var listener = DataLinkListener.Start(_folder, "s3cret", coordinator.Ref)!;
        using var worker = DataLink.Connect(Path.Combine(_folder, DataLinkListener.SocketName));
        Assert.True(worker.TrySend(new DataLinkHello("w1", "s3cret")));
        var opened = coordinator.ExpectLocal<DataLinkOpened>();
        Assert.Equal("w1", opened.WorkerId);

        worker.TrySend(new WorkerReady("w1"));
        worker.TrySend(new ChunksDone([new ChunkDone(new ChunkId(5, 0), 1, Blob.Of([1, 2]), -1, null, 3), new ChunkDone(new ChunkId(5, 1), 1, new Blob([], "/x"), 0, new TaskError("T", "m", "s"), 4)]));
        Assert.Equal(new WorkerReady("w1"), coordinator.ExpectLocal<FromWorker>().Message);
        var batch = (ChunksDone)coordinator.ExpectLocal<FromWorker>().Message;
        Assert.Equal([new ChunkId(5, 0), new ChunkId(5, 1)], batch.Results.Select(r => r.Chunk));
        Assert.Equal([1, 2], batch.Results[0].Results.Inline);
        Assert.Equal("/x", batch.Results[1].Results.File);
        Assert.Equal("m", batch.Results[1].Error!.Message);

        Assert.True(opened.Link.TrySend(new RunChunks([new RunChunk(new ChunkId(6, 0), 1, [9], 77, Blob.Of([3]))])));
        Assert.True(opened.Link.TrySend(new ForgetCall(6)));
        Assert.True(opened.Link.TrySend(Retire.Instance));
        var run = Assert.IsType<RunChunks>(worker.Receive()).Chunks.Single();
        Assert.Equal((new ChunkId(6, 0), 77L, (byte)9), (run.Chunk, run.FunctionKey, run.Function[0]));
        Assert.Equal(new ForgetCall(6), worker.Receive());
        Assert.Same(Retire.Instance, worker.Receive());
    }

    [Fact]
    public async Task A_frame_above_a_mebibyte_must_travel_and_the_link_must_go_on_with_small_ones()
    {
        var coordinator = CreateTestProbe();
        using var listener = DataLinkListener.Start(_folder, "s3cret", coordinator.Ref)!;
        using var worker = DataLink.Connect(Path.Combine(_folder, DataLinkListener.SocketName));
        worker.TrySend(new DataLinkHello("w1", "s3cret"));
        var link = coordinator.ExpectLocal<DataLinkOpened>().Link;

        // A batch of many chunks, as imap over millions of inputs sends: the send buffer grows past 1 MiB, then shrinks.
        // The worker reads on its own thread, as in a worker process (a frame this size fills the socket's buffer).
        var received = Task.Run(() => (worker.Receive(), worker.Receive()));
        var chunks = Enumerable.Range(0, 300).Select(i => new RunChunk(new ChunkId(1, i), 1, [], 0, Blob.Of(new byte[8_000]))).ToArray();
        Assert.True(link.TrySend(new RunChunks(chunks)));
        Assert.True(link.TrySend(new ForgetCall(1)));
        var (batch, next) = await received.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(300, Assert.IsType<RunChunks>(batch).Chunks.Length);
        Assert.Equal(new ForgetCall(1), next);
    }

    [Fact]
    public void A_connection_without_the_secret_must_be_refused_closed_and_reported_and_nothing_it_sends_must_reach_the_coordinator()
    {
        var coordinator = CreateTestProbe();
        using var listener = DataLinkListener.Start(_folder, "s3cret", coordinator.Ref)!;
        using var stranger = DataLink.Connect(Path.Combine(_folder, DataLinkListener.SocketName));
        stranger.TrySend(new DataLinkHello("w1", "guess"));
        stranger.TrySend(new WorkerReady("w1"));
        Assert.Equal("wrong pool secret", Assert.IsType<WorkerRejected>(stranger.Receive()).Reason);
        Assert.Null(stranger.Receive()); // closed by the pool
        Assert.Equal("w1", coordinator.ExpectLocal<DataLinkRefused>().WorkerId);
        coordinator.ExpectNoMsg(TimeSpan.FromMilliseconds(300));
    }
}

/// <summary>
/// The handle relay of a pool's data link (a real link, and this process's host with a real queue): a worker reaches
/// this process's queues and locks through it, and nothing else.
/// </summary>
public sealed class HandleRelaySpec : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("actorpool-relay-spec-").FullName;

    void IDisposable.Dispose()
    {
        Directory.Delete(_folder, recursive: true);
        base.Dispose();
    }

    [Fact]
    public async Task A_worker_must_reach_this_processs_queues_and_only_them_with_only_a_clients_messages()
    {
        var queue = new ActorQueue<int>(); // starts this process's host
        var host = Hosting.Runtime.StartedHostAddress;
        var coordinator = CreateTestProbe();
        using var listener = DataLinkListener.Start(_folder, "s3cret", coordinator.Ref)!;
        using var worker = DataLink.Connect(Path.Combine(_folder, DataLinkListener.SocketName));
        worker.TrySend(new DataLinkHello("w1", "s3cret"));
        coordinator.ExpectLocal<DataLinkOpened>();
        var bound = TimeSpan.FromSeconds(30);
        Task<object?> Next() => Task.Run(() => worker.Receive());

        // Not a queue or the lock manager of this process's host: refused, whatever the path.
        string[] refused = ["akka.ssl.tcp://actorpool-host@127.0.0.1:1/user/actorpool-queue-x", $"{host}/system/remoting-terminator",
            $"{host}/user/actorpool", $"{host}/user/actorpool-locks", "not a path", $"{host}/user/actorpool-queue-x/child"];
        for (var i = 0; i < refused.Length; i++)
        {
            worker.TrySend(new HandleOpen(i + 1, refused[i], 1000));
            Assert.Equal(i + 1, Assert.IsType<HandleGone>(await Next().WaitAsync(bound)).Client);
        }

        // The queue: found, and a client's message answered.
        worker.TrySend(new HandleOpen(100, queue.ActorPath, 5000));
        Assert.Equal(new HandleOpened(100), await Next().WaitAsync(bound));
        worker.TrySend(new HandleTell(100, Payload.Serialize(new Queues.QGetStatus())));
        Assert.IsType<Queues.QStatus>(Payload.Deserialize(Assert.IsType<HandleReply>(await Next().WaitAsync(bound)).Message));

        // What a client never sends (an owner's answer, a system message, a string) does not reach the queue; an
        // unknown client's message neither. The next real message is still answered, first.
        queue.Put(7);
        await queue.FlushAsync();
        worker.TrySend(new HandleTell(100, Payload.Serialize(new Queues.QItems(1, [], 0, Completed: true))));
        worker.TrySend(new HandleTell(100, Payload.Serialize(Akka.Actor.PoisonPill.Instance)));
        worker.TrySend(new HandleTell(100, Payload.Serialize("hello")));
        worker.TrySend(new HandleTell(555, Payload.Serialize(new Queues.QComplete())));
        worker.TrySend(new HandleTell(100, Payload.Serialize(new Queues.QGetStatus())));
        var status = Assert.IsType<Queues.QStatus>(Payload.Deserialize(Assert.IsType<HandleReply>(await Next().WaitAsync(bound)).Message));
        Assert.Equal((1, false), (status.Count, status.Completed));
        Assert.Equal(7, queue.Get(bound));
    }
}
