using ActorPool.Configuration;
using ActorPool.Execution;
using ActorPool.Protocol;
using Akka.Actor;
using Akka.Configuration;
using Xunit;

namespace ActorPool.Tests.Protocol;

public class ProtocolSerializerSpec : IDisposable
{
    private readonly ActorSystem _system = ActorSystem.Create("serializer-spec",
        ConfigurationFactory.ParseString("akka.actor.provider = local").WithFallback(PoolSettings.Reference));

    public void Dispose() => _system.Terminate().Wait(TimeSpan.FromSeconds(10));

    public static TheoryData<object> Messages() => new()
    {
        new RunChunk(new ChunkId(7, 3), 2, [1, 2, 3], 99, Blob.Of([4, 5])),
        new RunChunk(new ChunkId(long.MaxValue, 0), 1, [], 0, new Blob([], "/dev/shm/actorpool-1-x/abc")),
        new RunChunk(new ChunkId(2, 5), 1, [], 0, Blob.Of([1]), 500, 0, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 50),
        new ChunkDone(new ChunkId(1, 2), 1, Blob.Of([9]), -1, null, 12345),
        new ChunkDone(new ChunkId(1, 2), 3, new Blob([], "/tmp/r"), 4, new TaskError("System.X", "boom é", "at Y"), 1),
    };

    [Theory]
    [MemberData(nameof(Messages))]
    public void Work_and_result_messages_must_round_trip_through_their_own_serializer(object message)
    {
        var serializer = _system.Serialization.FindSerializerFor(message);
        Assert.IsType<ProtocolSerializer>(serializer);
        var copy = Akka.Serialization.Serialization.WithTransport((ExtendedActorSystem)_system, () =>
            _system.Serialization.Deserialize(serializer.ToBinary(message), serializer.Identifier, Akka.Serialization.Serialization.ManifestFor(serializer, message)));
        Assert.Equal(Show(message), Show(copy));
    }

    [Fact]
    public void Batches_must_round_trip_in_order()
    {
        var batch = new RunChunks([new RunChunk(new ChunkId(1, 0), 1, [1], 0, Blob.Of([1])), new RunChunk(new ChunkId(1, 1), 1, [], 0, Blob.Of([2]))]);
        var done = new ChunksDone([new ChunkDone(new ChunkId(1, 0), 1, Blob.Of([3]), -1, null, 5), new ChunkDone(new ChunkId(1, 1), 1, Blob.Of([4]), -1, null, 6)]);
        foreach (object m in new object[] { batch, done })
        {
            var s = _system.Serialization.FindSerializerFor(m);
            Assert.IsType<ProtocolSerializer>(s);
            var copy = _system.Serialization.Deserialize(s.ToBinary(m), s.Identifier, Akka.Serialization.Serialization.ManifestFor(s, m));
            Assert.Equal(Show(m), Show(copy));
        }
    }

    // Records compare byte arrays by reference: compare their contents through a rendering instead.
    private static string Show(object m) => m switch
    {
        RunChunk r => $"{r.Chunk}|{r.Attempt}|{Convert.ToHexString(r.Function)}|{r.FunctionKey}|{Show(r.Items)}|{r.SoftMs}|{r.HardMs}|{r.TraceParent ?? "null"}|{r.FirstIndex}",
        RunChunks b => string.Join(";", b.Chunks.Select(Show)),
        ChunkDone d => $"{d.Chunk}|{d.Attempt}|{Show(d.Results)}|{d.Completed}|{d.Error}|{d.ElapsedTicks}",
        ChunksDone b => string.Join(";", b.Results.Select(Show)),
        Blob b => b.File ?? Convert.ToHexString(b.Inline),
        _ => m.ToString()!,
    };
}
