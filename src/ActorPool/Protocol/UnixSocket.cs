using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace ActorPool.Protocol;

/// <summary>
/// A Unix domain socket connection made with the C library's <c>socket</c> and <c>connect</c> (Linux only), read and
/// written as two streams over its descriptor (one a duplicate, so a reading thread and a writing one never share a
/// stream). Close-on-exec: what a task starts does not inherit it.
/// </summary>
internal sealed class UnixSocket
{
    private const int AfUnix = 1, SockStream = 1, SockCloexec = 0x80000, FdCloexec = 1, FSetFd = 2;
    private const int ShutWrite = 1, ShutBoth = 2;
    private const int MaxPathBytes = 107; // sun_path is 108 bytes with its NUL

    private readonly SafeFileHandle _handle;

    private UnixSocket(SafeFileHandle handle, Stream read, Stream write)
    {
        _handle = handle;
        Read = read;
        Write = write;
    }

    public Stream Read { get; }

    public Stream Write { get; }

    /// <summary>Connects to <paramref name="path"/>; null when not on Linux or when it fails (the caller tries the managed way).</summary>
    public static UnixSocket? TryConnect(string path)
    {
        if (!OperatingSystem.IsLinux())
            return null;
        var name = Encoding.UTF8.GetBytes(path);
        if (name.Length > MaxPathBytes)
            return null;
        var address = new byte[2 + name.Length + 1]; // sa_family_t, the path, its NUL
        address[0] = AfUnix;
        name.CopyTo(address, 2);
        try
        {
            var fd = socket(AfUnix, SockStream | SockCloexec, 0);
            if (fd < 0)
                return null;
            int copy;
            if (connect(fd, address, address.Length) != 0 || (copy = dup(fd)) < 0)
            {
                close(fd);
                return null;
            }
            _ = fcntl(copy, FSetFd, FdCloexec);
            var handle = new SafeFileHandle(fd, ownsHandle: true);
            var write = new FileStream(handle, FileAccess.Write, bufferSize: 0);
            var read = new FileStream(new SafeFileHandle(copy, ownsHandle: true), FileAccess.Read, bufferSize: 0);
            return new UnixSocket(handle, read, write);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Shuts the connection down (<see cref="SocketShutdown.Send"/> or both ways).</summary>
    /// <exception cref="ObjectDisposedException">It has been closed.</exception>
    public void Shutdown(SocketShutdown how) => _ = shutdown(_handle, how == SocketShutdown.Send ? ShutWrite : ShutBoth);

    [DllImport("libc", SetLastError = true)]
    private static extern int socket(int domain, int type, int protocol);

    [DllImport("libc", SetLastError = true)]
    private static extern int connect(int fd, byte[] address, int length);

    [DllImport("libc", SetLastError = true)]
    private static extern int dup(int fd);

    [DllImport("libc", SetLastError = true)]
    private static extern int fcntl(int fd, int command, int argument);

    [DllImport("libc", SetLastError = true)]
    private static extern int shutdown(SafeFileHandle fd, int how);

    [DllImport("libc", SetLastError = true)]
    private static extern int close(int fd);
}
