using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace ActorPool.Protocol;

/// <summary>
/// A direct connection between a coordinator and a worker on the same host (a Unix domain socket in the pool's
/// private folder) that carries the per-chunk messages: work, results, readiness. It skips the actor transport's
/// several thread hops per message; registration, death watch and everything else stay on Akka.Remote. Frames are
/// a 4-byte length and a message written by <see cref="ProtocolSerializer.WriteFrame"/>.
/// </summary>
internal sealed class DataLink : IWorkerChannel, IDisposable
{
    private readonly Action<SocketShutdown> _shutdown;
    private readonly Stream _stream;
    private readonly Stream? _readStream;
    private readonly BufferedStream _input;
    private readonly Lock _sendLock = new();
    private readonly MemoryStream _buffer = new();
    private readonly BinaryWriter _writer;
    private volatile bool _closed;

    private DataLink(Socket socket)
        : this(new NetworkStream(socket, ownsSocket: true), null, socket.Shutdown)
    {
    }

    /// <param name="write">Where frames are written (and, without <paramref name="read"/>, read from).</param>
    /// <param name="read">Where frames are read from, when that is a stream of its own.</param>
    /// <param name="shutdown">Shuts the connection down one way or both (never throws but a SocketException or ObjectDisposedException).</param>
    private DataLink(Stream write, Stream? read, Action<SocketShutdown> shutdown)
    {
        _stream = write;
        _readStream = read;
        _shutdown = shutdown;
        _input = new BufferedStream(read ?? write, 1 << 16);
        _writer = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);
    }

    public static DataLink Accepted(Socket socket) => new(socket);

    /// <summary>Connects to a pool's data socket.</summary>
    public static DataLink Connect(string path)
    {
        // A new worker's first connection: on Linux straight through the C library, as System.Net.Sockets' first
        // socket took about 30 ms of CPU (its telemetry's EventSource, measured), a third of a worker's start.
        if (UnixSocket.TryConnect(path) is { } raw)
            return new DataLink(raw.Write, raw.Read, raw.Shutdown);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        return new DataLink(socket);
    }

    /// <summary>Sends one message; false when the link is closed (the other end is gone).</summary>
    public bool TrySend(object message)
    {
        lock (_sendLock)
        {
            if (_closed)
                return false;
            try
            {
                _buffer.SetLength(4);
                _buffer.Position = 4;
                ProtocolSerializer.WriteFrame(_writer, message);
                _writer.Flush();
                var frame = _buffer.GetBuffer().AsSpan(0, (int)_buffer.Length);
                BinaryPrimitives.WriteInt32LittleEndian(frame, frame.Length - 4);
                _stream.Write(frame);
                if (_buffer.Capacity > 1 << 20)
                {
                    _buffer.SetLength(0); // a capacity below the length would throw
                    _buffer.Capacity = 1 << 12; // do not keep a large batch's buffer
                }
                return true;
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // The other end is gone or closing: nothing more goes out, but what it sent before (a refusal, say)
                // can still be read, until Receive sees the end.
                _closed = true;
                try
                {
                    _shutdown(SocketShutdown.Send);
                }
                catch (Exception closing) when (closing is SocketException or ObjectDisposedException)
                {
                }
                return false;
            }
        }
    }

    /// <summary>The largest first frame (the peer's hello) that is read before the peer has proved itself.</summary>
    public const int MaxHelloBytes = 4096;

    /// <summary>
    /// Blocks for the next message; null when the link is closed, or when the frame's length is above
    /// <paramref name="maxLength"/> (refused before anything is allocated for it).
    /// </summary>
    public object? Receive(int maxLength = int.MaxValue)
    {
        try
        {
            Span<byte> header = stackalloc byte[4];
            _input.ReadExactly(header);
            var length = BinaryPrimitives.ReadInt32LittleEndian(header);
            if (length <= 0 || length > maxLength)
                throw new InvalidDataException($"Bad data link frame length {length} (at most {maxLength}).");
            // A frame's buffer is the pool's, returned once it is read (every field is copied out): batches of results
            // run to a mebibyte, and a new array each would be a large-object-heap allocation, which full GCs follow.
            var body = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
            try
            {
                _input.ReadExactly(body.AsSpan(0, length));
                using var reader = new BinaryReader(new MemoryStream(body, 0, length, writable: false), Encoding.UTF8);
                return ProtocolSerializer.ReadFrame(reader);
            }
            finally
            {
                System.Buffers.ArrayPool<byte>.Shared.Return(body);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or NotSupportedException
                                       or InvalidDataException or ArgumentException or FormatException or OverflowException)
        {
            // The other end is gone, or sent a damaged or forged frame: either way the link is closed.
            Dispose();
            return null;
        }
    }

    public void Dispose()
    {
        _closed = true;
        try
        {
            _shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        _stream.Dispose();
        _readStream?.Dispose();
    }
}

/// <summary>
/// A linked worker's standard output: each line goes to the pool as a <see cref="LinkOutput"/> frame, in order with the
/// worker's other frames; when the link is gone, to the process's standard output (the pipe to the pool's process),
/// opened then: System.Console's writer took about 10 ms of a worker's start, measured.
/// </summary>
internal sealed class LinkLineWriter(DataLink link) : TextWriter
{
    private TextWriter? _fallback;

    private readonly System.Text.StringBuilder _line = new();
    private readonly Lock _gate = new();

    public override System.Text.Encoding Encoding => System.Text.Encoding.UTF8;

    public override void Write(char value)
    {
        lock (_gate)
        {
            if (value == '\n')
                Send();
            else if (value != '\r')
                _line.Append(value);
        }
    }

    public override void Write(string? value)
    {
        lock (_gate)
        {
            foreach (var c in value ?? "")
                Write(c);
        }
    }

    public override void WriteLine(string? value)
    {
        lock (_gate)
        {
            Write(value);
            Send();
        }
    }

    /// <summary>A partial line stays until its end comes (the pool copies whole lines).</summary>
    public override void Flush()
    {
    }

    /// <summary>What is left of a last line goes out (the worker is ending).</summary>
    public void FlushPartial()
    {
        lock (_gate)
        {
            if (_line.Length > 0)
                Send();
        }
    }

    private void Send()
    {
        var line = _line.ToString();
        _line.Clear();
        if (!link.TrySend(new LinkOutput(line)))
        {
            _fallback ??= new StreamWriter(Console.OpenStandardOutput(), new System.Text.UTF8Encoding(false)) { AutoFlush = true };
            _fallback.WriteLine(line);
        }
    }
}
