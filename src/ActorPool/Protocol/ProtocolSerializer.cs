using System.Text;
using ActorPool.Execution;
using Akka.Actor;
using Akka.Serialization;

namespace ActorPool.Protocol;

/// <summary>
/// The binary form of the messages that carry work and results (<see cref="RunChunk"/>, <see cref="RunChunks"/>,
/// <see cref="ChunkDone"/>, <see cref="ChunksDone"/>): written field by field, with no reflection or type
/// manifests, as they are sent once per chunk. The rarer protocol messages stay with Hyperion.
/// </summary>
internal sealed class ProtocolSerializer(ExtendedActorSystem system) : SerializerWithStringManifest(system)
{
    // A manifest names a message's layout: a new field means a new manifest, so two ends of different ActorPool versions
    // (a worker node and a coordinator) fail with that explanation rather than misread each other ("R"/"RS": before the
    // trace context and first index).
    private const string RunChunkManifest = "R2", RunChunksManifest = "RS2", ChunkDoneManifest = "D", ChunksDoneManifest = "DS";

    public override int Identifier => 4711;

    public override string Manifest(object o) => o switch
    {
        RunChunk => RunChunkManifest,
        RunChunks => RunChunksManifest,
        ChunkDone => ChunkDoneManifest,
        ChunksDone => ChunksDoneManifest,
        _ => throw new ArgumentException($"{nameof(ProtocolSerializer)} cannot serialize a {o.GetType()}.", nameof(o)),
    };

    public override byte[] ToBinary(object obj)
    {
        using var stream = new MemoryStream();
        using (var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
        {
            if (obj is not (RunChunk or RunChunks or ChunkDone or ChunksDone))
                throw new ArgumentException($"{nameof(ProtocolSerializer)} cannot serialize a {obj.GetType()}.", nameof(obj));
            WriteWork(w, obj);
        }
        return stream.ToArray();
    }

    public override object FromBinary(byte[] bytes, string manifest)
    {
        using var r = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        return manifest switch
        {
            RunChunkManifest => ReadRunChunk(r),
            RunChunksManifest => ReadRunChunks(r),
            ChunkDoneManifest => ReadChunkDone(r),
            ChunksDoneManifest => ReadChunksDone(r),
            _ => throw new System.Runtime.Serialization.SerializationException(
                $"Unknown ActorPool message manifest '{manifest}': the two ends run different ActorPool versions."),
        };
    }

    /// <summary>The fields of a work or result message (the same through Akka.Remote and on the data link).</summary>
    private static void WriteWork(BinaryWriter w, object message)
    {
        switch (message)
        {
            case RunChunk m:
                Write(w, m);
                break;
            case RunChunks m:
                WriteAll(w, m.Chunks, Write);
                break;
            case ChunkDone m:
                Write(w, m);
                break;
            case ChunksDone m:
                WriteAll(w, m.Results, Write);
                break;
        }
    }

    private static RunChunks ReadRunChunks(BinaryReader r) => new(ReadAll(r, ReadRunChunk));

    private static ChunksDone ReadChunksDone(BinaryReader r) => new(ReadAll(r, ReadChunkDone));

    private static void WriteAll<T>(BinaryWriter w, T[] items, Action<BinaryWriter, T> write)
    {
        w.Write(items.Length);
        foreach (var item in items)
            write(w, item);
    }

    /// <summary>The fewest bytes one work or result message takes on the wire (a count above what the rest could hold is forged).</summary>
    private const int MinMessageBytes = 24;

    private static T[] ReadAll<T>(BinaryReader r, Func<BinaryReader, T> read)
    {
        var items = new T[CheckedCount(r, r.ReadInt32(), MinMessageBytes)];
        for (var i = 0; i < items.Length; i++)
            items[i] = read(r);
        return items;
    }

    // ------------------------------------------------------------ frames of the direct data link

    private enum Kind : byte { RunChunk = 1, RunChunks, ChunkDone, ChunksDone, ForgetCall, Retire, WorkerReady, WorkerInitFailed, Hello, Accepted, Rejected, Ping, Pong, Warm, Open, Opened, Tell, Reply, Gone, Release, Output }

    /// <summary>Runs the data link codec once (a forkserver spare does, while it waits).</summary>
    public static void WarmUp()
    {
        using var stream = new MemoryStream();
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        object[] messages =
        [
            new RunChunks([new RunChunk(new ChunkId(1, 0), 1, [1], 1, Blob.Of([1]))]),
            new ChunksDone([new ChunkDone(new ChunkId(1, 0), 1, Blob.Of([1]), -1, null, 1)]),
            new WorkerAccepted([]), new WorkerReady("w"), new DataLinkHello("w", "s"), new ForgetCall(1), new LinkPing(1), new LinkPong(1), new LinkWarm(["h"]),
            new HandleOpen(1, "p", 1), new HandleOpened(1), new HandleTell(1, [1]), new HandleReply(1, [1]), new HandleGone(1, "r"), new HandleRelease(1), new LinkOutput("l"),
        ];
        foreach (var m in messages)
            WriteFrame(w, m);
        w.Flush();
        stream.Position = 0;
        using var r = new BinaryReader(stream, Encoding.UTF8);
        foreach (var _ in messages)
            ReadFrame(r);
    }

    /// <summary>Writes one message of the data link (a kind byte, then its fields).</summary>
    public static void WriteFrame(BinaryWriter w, object message)
    {
        switch (message)
        {
            case RunChunk: w.Write((byte)Kind.RunChunk); WriteWork(w, message); break;
            case RunChunks: w.Write((byte)Kind.RunChunks); WriteWork(w, message); break;
            case ChunkDone: w.Write((byte)Kind.ChunkDone); WriteWork(w, message); break;
            case ChunksDone: w.Write((byte)Kind.ChunksDone); WriteWork(w, message); break;
            case ForgetCall m: w.Write((byte)Kind.ForgetCall); w.Write(m.CallId); break;
            case Retire: w.Write((byte)Kind.Retire); break;
            case WorkerReady m: w.Write((byte)Kind.WorkerReady); w.Write(m.WorkerId); break;
            case WorkerInitFailed m:
                w.Write((byte)Kind.WorkerInitFailed);
                w.Write(m.WorkerId);
                w.Write(m.Error.Type);
                w.Write(m.Error.Message);
                w.Write(m.Error.StackTrace);
                break;
            case DataLinkHello m: w.Write((byte)Kind.Hello); w.Write(m.WorkerId); w.Write(m.Secret); break;
            case WorkerAccepted m: w.Write((byte)Kind.Accepted); WriteBytes(w, m.Initializer); break;
            case WorkerRejected m: w.Write((byte)Kind.Rejected); w.Write(m.Reason); w.Write(m.Retry); break;
            case LinkPing m: w.Write((byte)Kind.Ping); w.Write(m.Seq); break;
            case LinkPong m: w.Write((byte)Kind.Pong); w.Write(m.Seq); break;
            case LinkWarm m:
                w.Write((byte)Kind.Warm);
                w.Write(Math.Min(m.Hosts.Length, LinkWarm.MaxHosts));
                foreach (var host in m.Hosts.Take(LinkWarm.MaxHosts))
                    w.Write(host);
                w.Write(m.RelayHost);
                break;
            case HandleOpen m: w.Write((byte)Kind.Open); w.Write(m.Client); w.Write(m.Owner); w.Write(m.WithinMs); break;
            case HandleOpened m: w.Write((byte)Kind.Opened); w.Write(m.Client); break;
            case HandleTell m: w.Write((byte)Kind.Tell); w.Write(m.Client); WriteBytes(w, m.Message); break;
            case HandleReply m: w.Write((byte)Kind.Reply); w.Write(m.Client); WriteBytes(w, m.Message); break;
            case HandleGone m: w.Write((byte)Kind.Gone); w.Write(m.Client); w.Write(m.Reason); break;
            case HandleRelease m: w.Write((byte)Kind.Release); w.Write(m.Client); break;
            case LinkOutput m: w.Write((byte)Kind.Output); w.Write(m.Line); break;
            default: throw new ArgumentException($"The data link does not carry {message.GetType()}.", nameof(message));
        }
    }

    /// <summary>Reads one message written by <see cref="WriteFrame"/>.</summary>
    public static object ReadFrame(BinaryReader r)
    {
        switch ((Kind)r.ReadByte())
        {
            case Kind.RunChunk: return ReadRunChunk(r);
            case Kind.RunChunks: return ReadRunChunks(r);
            case Kind.ChunkDone: return ReadChunkDone(r);
            case Kind.ChunksDone: return ReadChunksDone(r);
            case Kind.ForgetCall: return new ForgetCall(r.ReadInt64());
            case Kind.Retire: return Retire.Instance;
            case Kind.WorkerReady: return new WorkerReady(r.ReadString());
            case Kind.WorkerInitFailed: return new WorkerInitFailed(r.ReadString(), new TaskError(r.ReadString(), r.ReadString(), r.ReadString()));
            case Kind.Hello: return new DataLinkHello(r.ReadString(), r.ReadString());
            case Kind.Accepted: return new WorkerAccepted(ReadBytes(r));
            case Kind.Rejected: return new WorkerRejected(r.ReadString(), r.ReadBoolean());
            case Kind.Ping: return new LinkPing(r.ReadInt64());
            case Kind.Pong: return new LinkPong(r.ReadInt64());
            case Kind.Warm: return new LinkWarm(ReadHosts(r), r.ReadString());
            case Kind.Open: return new HandleOpen(r.ReadInt32(), r.ReadString(), r.ReadInt32());
            case Kind.Opened: return new HandleOpened(r.ReadInt32());
            case Kind.Tell: return new HandleTell(r.ReadInt32(), ReadBytes(r));
            case Kind.Reply: return new HandleReply(r.ReadInt32(), ReadBytes(r));
            case Kind.Gone: return new HandleGone(r.ReadInt32(), r.ReadString());
            case Kind.Release: return new HandleRelease(r.ReadInt32());
            case Kind.Output: return new LinkOutput(r.ReadString());
            case var k: throw new InvalidDataException($"Unknown data link message kind {(byte)k}: the two ends run different ActorPool versions.");
        }
    }

    private static string[] ReadHosts(BinaryReader r)
    {
        var count = r.ReadInt32();
        if (count is < 0 or > LinkWarm.MaxHosts)
            throw new InvalidDataException($"A warm-up message names {count} hosts; at most {LinkWarm.MaxHosts} are allowed.");
        var hosts = new string[count];
        for (var i = 0; i < count; i++)
            hosts[i] = r.ReadString();
        return hosts;
    }

    private static void Write(BinaryWriter w, RunChunk m)
    {
        Write(w, m.Chunk);
        w.Write(m.Attempt);
        WriteBytes(w, m.Function);
        w.Write(m.FunctionKey);
        Write(w, m.Items);
        w.Write(m.SoftMs);
        w.Write(m.HardMs);
        w.Write(m.TraceParent ?? "");
        w.Write(m.FirstIndex);
    }

    private static RunChunk ReadRunChunk(BinaryReader r) =>
        new(ReadChunkId(r), r.ReadInt32(), ReadBytes(r), r.ReadInt64(), ReadBlob(r), r.ReadInt32(), r.ReadInt32(), NullIfEmpty(r.ReadString()), r.ReadInt64());

    private static string? NullIfEmpty(string s) => s.Length == 0 ? null : s;

    private static void Write(BinaryWriter w, ChunkDone m)
    {
        Write(w, m.Chunk);
        w.Write(m.Attempt);
        Write(w, m.Results);
        w.Write(m.Completed);
        w.Write(m.Error is not null);
        if (m.Error is not null)
        {
            w.Write(m.Error.Type);
            w.Write(m.Error.Message);
            w.Write(m.Error.StackTrace);
        }
        w.Write(m.ElapsedTicks);
    }

    private static ChunkDone ReadChunkDone(BinaryReader r)
    {
        var chunk = ReadChunkId(r);
        var attempt = r.ReadInt32();
        var results = ReadBlob(r);
        var completed = r.ReadInt32();
        var error = r.ReadBoolean() ? new TaskError(r.ReadString(), r.ReadString(), r.ReadString()) : null;
        return new ChunkDone(chunk, attempt, results, completed, error, r.ReadInt64());
    }

    private static void Write(BinaryWriter w, ChunkId id)
    {
        w.Write(id.CallId);
        w.Write(id.Index);
    }

    private static ChunkId ReadChunkId(BinaryReader r) => new(r.ReadInt64(), r.ReadInt32());

    private static void Write(BinaryWriter w, Blob blob)
    {
        w.Write(blob.File is not null);
        if (blob.File is not null)
            w.Write(blob.File);
        else
            WriteBytes(w, blob.Inline);
    }

    private static Blob ReadBlob(BinaryReader r) => r.ReadBoolean() ? new Blob([], r.ReadString()) : Blob.Of(ReadBytes(r));

    private static void WriteBytes(BinaryWriter w, byte[] bytes)
    {
        w.Write(bytes.Length);
        w.Write(bytes);
    }

    private static byte[] ReadBytes(BinaryReader r)
    {
        var n = CheckedCount(r, r.ReadInt32(), 1);
        return n == 0 ? [] : r.ReadBytes(n);
    }

    /// <summary>
    /// A count or length read from a peer, checked against what is left of the message before anything is allocated
    /// for it.
    /// </summary>
    private static int CheckedCount(BinaryReader r, int count, int minBytesEach)
    {
        var left = r.BaseStream.Length - r.BaseStream.Position;
        if (count < 0 || (long)count * minBytesEach > left)
            throw new InvalidDataException($"A message claims {count:N0} entries but only {left:N0} bytes follow: it is damaged or forged.");
        return count;
    }
}
