using System.Diagnostics;
using System.Globalization;

namespace ActorPool.Execution;

/// <summary>
/// Large arguments and results between processes of one host go through files in a per-pool folder (in memory,
/// under /dev/shm, where the system has it) instead of through the actor channel: one write and one read instead of
/// the several copies and frame limits of remoting. Small data stays inline.
/// </summary>
internal static class Spill
{
    /// <summary>Serialized data of at least this many bytes goes to a file.</summary>
    public const int Threshold = 256 * 1024;

    private const string Prefix = "actorpool-";

    /// <summary>
    /// The spill folders this process uses (the ones its pools made, and the one its pool told it): a file a message
    /// names is only ever read or deleted when it is a file of one of these, whatever path the message says.
    /// </summary>
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> Folders = new(StringComparer.Ordinal);

    /// <summary>A worker: the folder its pool named in its handshake (over standard input, from the pool itself).</summary>
    public static void Trust(string? folder)
    {
        if (folder is not null)
            Folders[Path.GetFullPath(folder)] = 0;
    }

    /// <summary>
    /// Whether <paramref name="path"/> is a spill file: a name of 32 hexadecimal digits (as <see cref="Write"/> makes)
    /// directly inside one of this process's spill folders. Anything else (another folder, <c>..</c>, a link's name)
    /// is not.
    /// </summary>
    public static bool IsSpillFile(string? path)
    {
        if (string.IsNullOrEmpty(path) || !Path.IsPathFullyQualified(path))
            return false;
        var name = Path.GetFileName(path);
        if (name.Length != 32 || !name.All(char.IsAsciiHexDigitLower))
            return false;
        var folder = Path.GetDirectoryName(path);
        return folder is not null && folder == Path.GetFullPath(folder) && Folders.ContainsKey(folder);
    }

    /// <summary>
    /// Creates a pool's spill folder (readable by this user only) after removing folders left by pools whose
    /// process is gone; null when none can be made (everything then travels inline).
    /// </summary>
    public static string? CreateFolder()
    {
        try
        {
            var root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
            SweepStale(root);
            var path = Path.Combine(root, $"{Prefix}{Environment.ProcessId}-{Guid.NewGuid():N}");
            if (OperatingSystem.IsWindows())
                Directory.CreateDirectory(path);
            else
                Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            Trust(path);
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    public static void DeleteFolder(string? folder)
    {
        if (folder is null)
            return;
        Folders.TryRemove(Path.GetFullPath(folder), out _);
        try
        {
            Directory.Delete(folder, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Inline when small or without a folder; otherwise written to a new file in <paramref name="folder"/>.</summary>
    public static Blob Pack(byte[] bytes, string? folder) =>
        folder is null || bytes.Length < Threshold ? Blob.Of(bytes) : Write(folder, stream => stream.Write(bytes));

    /// <summary>A new file in <paramref name="folder"/> (this user only), filled by <paramref name="write"/>.</summary>
    public static Blob Write(string folder, Action<Stream> write)
    {
        var path = Path.Combine(folder, Guid.NewGuid().ToString("N"));
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, BufferSize = 1 << 16 };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var file = new FileStream(path, options);
            write(file);
        }
        catch (IOException e) when (e.HResult == 28 || e.Message.Contains("No space left", StringComparison.OrdinalIgnoreCase))
        {
            File.Delete(path);
            throw new SpillFullException(
                $"The pool's spill folder '{folder}' is full ({e.Message}): large arguments and results go there as files. Free space in " +
                $"{Path.GetDirectoryName(folder)} (or make it larger), or send smaller chunks (chunkSize).", e);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
        return new Blob([], path);
    }

    /// <summary>Deserializes a blob; a file is left in place (a retried chunk reads it again).</summary>
    public static object? Unpack(Blob blob)
    {
        if (blob.File is null)
            return Payload.Deserialize(blob.Inline);
        if (!IsSpillFile(blob.File))
            throw new InvalidDataException($"A message named '{blob.File}' as its data, which is not a file of the pool's spill folder: refused.");
        using var file = new FileStream(blob.File, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, 1 << 16);
        return Payload.Deserialize(file);
    }

    public static void Delete(Blob? blob)
    {
        if (blob?.File is null || !IsSpillFile(blob.File))
            return; // only ever a file of this process's spill folders, whatever a peer names
        try
        {
            File.Delete(blob.File);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static void SweepStale(string root)
    {
        foreach (var dir in Directory.EnumerateDirectories(root, Prefix + "*"))
        {
            var name = Path.GetFileName(dir).AsSpan(Prefix.Length);
            var dash = name.IndexOf('-');
            if (dash > 0 && int.TryParse(name[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && !IsRunning(pid))
                DeleteFolder(dir);
        }
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}

/// <summary>The pool's spill folder (in memory, under /dev/shm) is full: nothing of the data was sent.</summary>
internal sealed class SpillFullException(string message, Exception inner) : IOException(message, inner);
