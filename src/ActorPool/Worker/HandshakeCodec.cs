using System.Text;
using ActorPool.Hosting;

namespace ActorPool.Worker;

/// <summary>
/// A <see cref="WorkerHandshake"/> or a <see cref="TlsIdentity"/> as one line of text (the fields in order, with
/// <see cref="BinaryWriter"/>, in base64): what a new worker reads first thing from its standard input. Its own pool
/// writes it, so both ends are the same build. Measured here, a new process spent 45-60 ms building
/// <see cref="System.Text.Json.JsonSerializer"/>'s machinery for it (source-generated) and 12-16 ms in
/// <see cref="System.Text.Json.Utf8JsonReader"/>'s first use; this takes under one. Malformed input is a
/// <see cref="FormatException"/> that says so.
/// </summary>
internal static class HandshakeCodec
{
    // The first byte: what follows (a line from another ActorPool version is refused, not misread).
    private const byte HandshakeV1 = 0xA1, IdentityV1 = 0xB1;

    public static string Write(WorkerHandshake h) => Write(writer =>
    {
        writer.Write(HandshakeV1);
        writer.Write(h.Coordinator);
        writer.Write(h.WorkerId);
        writer.Write(h.Secret);
        writer.Write(h.ParentPid);
        writer.Write(h.MaxFrameSize);
        WriteOptional(writer, h.SpillFolder);
        WriteOptional(writer, h.DataSocket);
        WriteOptional(writer, h.EntryAssembly);
        writer.Write(h.Target is not null);
        if (h.Target is { } target)
        {
            writer.Write(target.Length);
            writer.Write(target);
        }
        writer.Write(h.Daemon);
        WriteOptional(writer, h.Tls);
        WriteOptional(writer, h.StartMethod);
        WriteOptional(writer, h.Trust);
        writer.Write(h.Warm is not null);
        if (h.Warm is { } warm)
            WriteStrings(writer, warm);
        WriteOptional(writer, h.RelayHost);
    });

    public static string Write(TlsIdentity identity) => Write(writer =>
    {
        writer.Write(IdentityV1);
        WriteTls(writer, identity);
    });

    /// <exception cref="FormatException">The line is not a handshake this build wrote.</exception>
    public static WorkerHandshake ReadHandshake(string line) => Read(line, HandshakeV1, reader =>
    {
        var coordinator = reader.ReadString();
        var workerId = reader.ReadString();
        var secret = reader.ReadString();
        var parentPid = reader.ReadInt32();
        var maxFrameSize = reader.ReadInt32();
        var spill = ReadOptional(reader);
        var socket = ReadOptional(reader);
        var entry = ReadOptional(reader);
        var target = reader.ReadBoolean() ? ReadBytes(reader) : null;
        var daemon = reader.ReadBoolean();
        var tls = ReadOptionalTls(reader);
        var method = ReadOptional(reader);
        var trust = ReadOptionalTls(reader);
        var warm = reader.ReadBoolean() ? ReadStrings(reader) : null;
        var relay = ReadOptional(reader);
        return new WorkerHandshake(coordinator, workerId, secret, parentPid, maxFrameSize, spill, socket, entry, target, daemon, tls, method, trust, warm, relay);
    });

    /// <exception cref="FormatException">The line is not an identity this build wrote.</exception>
    public static TlsIdentity ReadTls(string line) => Read(line, IdentityV1, ReadTls);

    private static string Write(Action<BinaryWriter> write)
    {
        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true))
            write(writer);
        return Convert.ToBase64String(stream.GetBuffer(), 0, (int)stream.Length);
    }

    private static T Read<T>(string line, byte kind, Func<BinaryReader, T> read)
    {
        byte[] bytes;
        try
        {
            bytes = Convert.FromBase64String(line);
        }
        catch (FormatException)
        {
            throw new FormatException("The line is not base64.");
        }
        using var reader = new BinaryReader(new MemoryStream(bytes, writable: false), Encoding.UTF8);
        try
        {
            if (bytes.Length == 0 || reader.ReadByte() != kind)
                throw new FormatException("The line was written by another ActorPool version, or is not a worker's settings.");
            var value = read(reader);
            if (reader.BaseStream.Position != bytes.Length)
                throw new FormatException("The line has bytes after its last field.");
            return value;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException)
        {
            throw new FormatException("The line ends before its last field.", e);
        }
    }

    private static void WriteOptional(BinaryWriter writer, string? value)
    {
        writer.Write(value is not null);
        if (value is not null)
            writer.Write(value);
    }

    private static string? ReadOptional(BinaryReader reader) => reader.ReadBoolean() ? reader.ReadString() : null;

    private static void WriteOptional(BinaryWriter writer, TlsIdentity? identity)
    {
        writer.Write(identity is not null);
        if (identity is not null)
            WriteTls(writer, identity);
    }

    private static TlsIdentity? ReadOptionalTls(BinaryReader reader) => reader.ReadBoolean() ? ReadTls(reader) : null;

    private static void WriteTls(BinaryWriter writer, TlsIdentity identity)
    {
        writer.Write(identity.CertificatePem);
        writer.Write(identity.KeyPem);
        WriteStrings(writer, identity.Pins);
    }

    private static TlsIdentity ReadTls(BinaryReader reader) => new(reader.ReadString(), reader.ReadString(), ReadStrings(reader));

    private static void WriteStrings(BinaryWriter writer, string[] values)
    {
        writer.Write(values.Length);
        foreach (var value in values)
            writer.Write(value);
    }

    private static string[] ReadStrings(BinaryReader reader)
    {
        var count = reader.ReadInt32();
        // A count is checked against what is left before anything is allocated for it (each string takes a byte at least).
        if (count < 0 || count > reader.BaseStream.Length - reader.BaseStream.Position)
            throw new FormatException($"A list of {count} strings cannot fit in the line.");
        var values = new string[count];
        for (var i = 0; i < count; i++)
            values[i] = reader.ReadString();
        return values;
    }

    private static byte[] ReadBytes(BinaryReader reader)
    {
        var length = reader.ReadInt32();
        if (length < 0 || length > reader.BaseStream.Length - reader.BaseStream.Position)
            throw new FormatException($"A field of {length} bytes cannot fit in the line.");
        return reader.ReadBytes(length);
    }
}
