using System.Buffers.Binary;
using System.Net.Sockets;
using ActorPool.Coordination;
using ActorPool.Execution;
using ActorPool.Protocol;
using Xunit;

namespace ActorPool.Tests.Security;

/// <summary>
/// Counts, lengths and paths read from a peer are checked before anything is allocated or touched: a few bytes that
/// claim a huge count, a frame header that claims 2 GiB, a result "file" outside the spill folder, a graph too deep.
/// </summary>
public sealed class WireLimitsSpec : Akka.TestKit.Xunit2.TestKit, IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("actorpool-limits-spec-").FullName;

    void IDisposable.Dispose()
    {
        Directory.Delete(_folder, recursive: true);
        base.Dispose();
    }

    private static long Allocated(Action action)
    {
        var before = GC.GetAllocatedBytesForCurrentThread();
        action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void A_message_claiming_200_million_entries_in_four_bytes_must_be_refused_without_allocating_them()
    {
        var serializer = new ProtocolSerializer((Akka.Actor.ExtendedActorSystem)Sys);
        var body = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(body, 200_000_000);
        foreach (var manifest in new[] { "RS2", "DS" })
        {
            var allocated = Allocated(() => Assert.Throws<InvalidDataException>(() => serializer.FromBinary(body, manifest)));
            Assert.True(allocated < 1 << 20, $"{manifest}: {allocated:N0} bytes allocated");
        }
        // A byte array whose length says more than follows.
        var chunk = serializer.ToBinary(new RunChunk(new ChunkId(1, 0), 1, [1, 2, 3], 0, Blob.Of([4])));
        BinaryPrimitives.WriteInt32LittleEndian(chunk.AsSpan(16), int.MaxValue - 8); // the function's length
        Assert.Throws<InvalidDataException>(() => serializer.FromBinary(chunk, "R2"));
    }

    [Fact]
    public void A_raw_array_claiming_more_elements_than_follow_must_be_refused_without_allocating_them()
    {
        var bytes = Payload.Serialize(new[] { 1, 2, 3 });
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), 200_000_000);
        var allocated = Allocated(() => Assert.Throws<InvalidDataException>(() => Payload.Deserialize(bytes)));
        Assert.True(allocated < 1 << 20, $"{allocated:N0} bytes allocated");
    }

    [Fact]
    public void A_data_link_frame_header_claiming_2_GiB_before_the_hello_must_close_the_link_without_allocating()
    {
        var coordinator = CreateTestProbe();
        using var listener = DataLinkListener.Start(_folder, "s3cret", coordinator.Ref)!;
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(Path.Combine(_folder, DataLinkListener.SocketName)));
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var header = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(header, 0x7FFFFFF0);
        socket.Send(header);
        // The listener refuses it at once: the coordinator hears of a refused connection, and the link is closed.
        Assert.IsType<DataLinkRefused>(coordinator.ExpectMsg<Local>(TimeSpan.FromSeconds(10)).Message);
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64L << 20);
        var buffer = new byte[16];
        socket.ReceiveTimeout = 10_000;
        var read = 0;
        try
        {
            while (socket.Receive(buffer) is var n and > 0)
                read += n;
        }
        catch (SocketException)
        {
        }
        Assert.True(read < 1024, "the link stayed open");
    }

    [Fact]
    public void Only_files_of_this_process_spill_folders_are_read_or_deleted_whatever_a_message_names()
    {
        var folder = Spill.CreateFolder()!;
        try
        {
            var blob = Spill.Write(folder, s => s.Write(Payload.Serialize(new[] { 1, 2 })));
            Assert.True(Spill.IsSpillFile(blob.File));
            Assert.Equal([1, 2], (int[])Spill.Unpack(blob)!);

            var outside = Path.Combine(_folder, Path.GetFileName(blob.File!));
            File.WriteAllText(outside, "keep me");
            foreach (var named in new[] { outside, "/etc/passwd", Path.Combine(folder, "..", Path.GetFileName(folder), Path.GetFileName(blob.File!)),
                         Path.Combine(folder, "socket"), "relative/" + Path.GetFileName(blob.File!) })
            {
                Assert.False(Spill.IsSpillFile(named), named);
                Assert.Throws<InvalidDataException>(() => Spill.Unpack(new Blob([], named)));
                Spill.Delete(new Blob([], named));
            }
            Assert.Equal("keep me", File.ReadAllText(outside));
            Spill.Delete(blob);
            Assert.False(File.Exists(blob.File));
        }
        finally
        {
            Spill.DeleteFolder(folder);
        }
    }

    private sealed record Node(int Value, Node? Next);

    /// <summary>A type to load as a plugin (from a copy of this assembly outside the application's dependencies).</summary>
    public sealed class PluginThing
    {
        public int Value { get; set; } = 7;
    }

    [Fact]
    public void An_argument_whose_type_comes_from_a_plugin_assembly_must_be_refused_at_the_call_naming_it()
    {
        var copy = Path.Combine(_folder, "Plugin.Copy.dll");
        File.Copy(typeof(PluginThing).Assembly.Location, copy);
        var context = new System.Runtime.Loader.AssemblyLoadContext("plugin", isCollectible: true);
        try
        {
            var type = context.LoadFromAssemblyPath(copy).GetType(typeof(PluginThing).FullName!)!;
            var thing = Activator.CreateInstance(type)!;
            var error = Assert.Throws<NotSendableException>(() => Payload.CheckSendable<object>(new object[] { thing }, "argument 0"));
            Assert.Contains("not part of the application's dependencies", error.Message);
            Assert.Contains(copy, error.Message);
            Payload.CheckSendable<object>(new object[] { new PluginThing() }, "argument 0"); // the application's own copy is fine
        }
        finally
        {
            context.Unload();
        }
    }

    [Fact]
    public async Task An_argument_nested_deeper_than_the_bound_must_be_refused_at_the_call_naming_the_depth()
    {
        Node? deep = null;
        for (var i = 0; i < 100_000; i++)
            deep = new Node(i, deep);
        var error = Assert.Throws<NotSendableException>(() => Payload.CheckSendable(deep, "argument 0"));
        Assert.Contains($"nests more than {Payload.MaxDepth} objects deep", error.Message);
        Assert.Contains("Flatten it", error.Message);

        // Just inside the bound: checked, sent and rebuilt, on a thread-pool thread (the smaller stack).
        Node? inside = null;
        for (var i = 0; i < Payload.MaxDepth - 2; i++)
            inside = new Node(i, inside);
        var copy = await Task.Run(() =>
        {
            Payload.CheckSendable(inside, "argument 0");
            return (Node)Payload.Deserialize(Payload.Serialize(inside))!;
        });
        Assert.Equal(inside!.Value, copy.Value);
    }
}
