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
    private readonly Socket _socket;
    private readonly NetworkStream _stream;
    private readonly BufferedStream _input;
    private readonly Lock _sendLock = new();
    private readonly MemoryStream _buffer = new();
    private readonly BinaryWriter _writer;
    private volatile bool _closed;

    private DataLink(Socket socket)
    {
        _socket = socket;
        _stream = new NetworkStream(socket, ownsSocket: true);
        _input = new BufferedStream(_stream, 1 << 16);
        _writer = new BinaryWriter(_buffer, Encoding.UTF8, leaveOpen: true);
    }

    public static DataLink Accepted(Socket socket) => new(socket);

    /// <summary>Connects to a pool's data socket.</summary>
    public static DataLink Connect(string path)
    {
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
                    _socket.Shutdown(SocketShutdown.Send);
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
            var body = new byte[length];
            _input.ReadExactly(body);
            using var reader = new BinaryReader(new MemoryStream(body, writable: false), Encoding.UTF8);
            return ProtocolSerializer.ReadFrame(reader);
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
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        _stream.Dispose();
    }
}

/// <summary>
/// A linked worker's standard output: each line goes to the pool as a <see cref="LinkOutput"/> frame, in order with the
/// worker's other frames; when the link is gone, to <paramref name="fallback"/> (the pipe to the pool's process).
/// </summary>
internal sealed class LinkLineWriter(DataLink link, TextWriter fallback) : TextWriter
{
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
            fallback.WriteLine(line);
            fallback.Flush();
        }
    }
}
