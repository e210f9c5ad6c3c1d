using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using ActorPool.Protocol;
using Akka.Actor;

namespace ActorPool.Coordination;

/// <summary>
/// The caller's end of the data links: a Unix domain socket in the pool's private folder. A worker connects after
/// its registration was accepted and proves it belongs to the pool with the pool's secret; from then on its
/// messages reach the coordinator as <see cref="FromWorker"/>, in order, one reading thread per link.
/// </summary>
internal sealed class DataLinkListener : IDisposable
{
    public const string SocketName = "data.sock";

    private readonly Socket _listener;
    private readonly byte[] _secret;
    private readonly IActorRef _coordinator;
    private bool _forwardOutput;
    private readonly List<DataLink> _links = [];
    private volatile bool _disposed;

    private DataLinkListener(Socket listener, string secret, IActorRef coordinator)
    {
        _listener = listener;
        _secret = Encoding.UTF8.GetBytes(secret);
        _coordinator = coordinator;
        new Thread(AcceptLoop) { IsBackground = true, Name = "actorpool-data-accept" }.Start();
    }

    /// <summary>Listens at <c>folder/data.sock</c>; null when the system has no Unix domain sockets.</summary>
    public static DataLinkListener? Start(string folder, string secret, IActorRef coordinator, bool forwardOutput = true)
    {
        if (!Socket.OSSupportsUnixDomainSockets)
            return null;
        var path = Path.Combine(folder, SocketName);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Bind(new UnixDomainSocketEndPoint(path));
            socket.Listen(64);
            return new DataLinkListener(socket, secret, coordinator) { _forwardOutput = forwardOutput };
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }

    private void AcceptLoop()
    {
        while (!_disposed)
        {
            Socket accepted;
            try
            {
                accepted = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            var link = DataLink.Accepted(accepted);
            lock (_links)
            {
                if (_disposed)
                {
                    link.Dispose();
                    return;
                }
                _links.Add(link);
            }
            new Thread(() => ReadLoop(link)) { IsBackground = true, Name = "actorpool-data-link" }.Start();
        }
    }

    private void ReadLoop(DataLink link)
    {
        Hosting.HandleRelay? relay = null;
        try
        {
            var first = link.Receive(DataLink.MaxHelloBytes); // a stranger's frame header cannot make us allocate
            if (first is not DataLinkHello hello || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(hello.Secret), _secret))
            {
                // Not one of this pool's workers: told so (as a registration without the secret is), and the pool logs it.
                link.TrySend(new WorkerRejected("wrong pool secret"));
                _coordinator.TellLocal(new DataLinkRefused((first as DataLinkHello)?.WorkerId));
                return;
            }
            _coordinator.TellLocal(new DataLinkOpened(hello.WorkerId, link));
            relay = new Hosting.HandleRelay(link);
            while (link.Receive() is { } message)
            {
                if (message is LinkOutput output)
                {
                    if (_forwardOutput)
                        Launching.WorkerProcess.Forward(Console.Out, output.Line);
                }
                else if (Hosting.HandleRelay.IsRelayFrame(message))
                    relay.OnFrame(message); // the worker's queue and lock clients, to this process's owners
                else
                    _coordinator.TellLocal(new FromWorker(hello.WorkerId, message));
            }
        }
        finally
        {
            relay?.OnClosed();
            link.Dispose();
            lock (_links)
                _links.Remove(link);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
        lock (_links)
        {
            foreach (var link in _links)
                link.Dispose();
            _links.Clear();
        }
    }
}
