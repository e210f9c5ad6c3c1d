namespace ActorPool.Execution;

/// <summary>
/// Serialized user data (arguments or results) as it travels between a caller and a worker: the bytes inline in the
/// message, or, when they are large and both ends share the host, the path of a file in the pool's spill folder.
/// </summary>
internal sealed record Blob(byte[] Inline, string? File)
{
    public static Blob Of(byte[] bytes) => new(bytes, null);

    public bool IsFile => File is not null;

    public override string ToString() => File is null ? $"{Inline.Length:N0} bytes inline" : $"file {File}";
}
