using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ActorPool.Execution;

/// <summary>
/// The fast path of <see cref="Payload"/>: arrays of primitive numbers travel as their raw memory (a copy, no
/// per-element work), and arrays of byte arrays as lengths and bytes. Everything else goes through Hyperion.
/// </summary>
internal static class RawArrays
{
    private const int HeaderSize = 6; // format, element code, count

    // The element types by code; the code is the index.
    private static readonly Type[] Types =
    [
        typeof(byte), typeof(sbyte), typeof(short), typeof(ushort), typeof(int), typeof(uint), typeof(long), typeof(ulong),
        typeof(float), typeof(double), typeof(bool), typeof(char), typeof(decimal), typeof(byte[]),
    ];

    private const byte BytesOfBytes = 13;

    /// <summary>The encoding of <paramref name="value"/>, or null when it has no raw form.</summary>
    public static byte[]? TryEncode(object? value, byte format)
    {
        if (value is not Array array || !BitConverter.IsLittleEndian)
            return null;
        // By exact type: the runtime lets a uint[] pass as an int[] (and sbyte[] as byte[]), so patterns would mix them up.
        var code = Array.IndexOf(Types, array.GetType().GetElementType());
        if (code < 0 || array.GetType() != Types[code].MakeArrayType())
            return null;
        return code switch
        {
            0 => Encode(Unsafe.As<byte[]>(array), 0, format),
            1 => Encode(Unsafe.As<sbyte[]>(array), 1, format),
            2 => Encode(Unsafe.As<short[]>(array), 2, format),
            3 => Encode(Unsafe.As<ushort[]>(array), 3, format),
            4 => Encode(Unsafe.As<int[]>(array), 4, format),
            5 => Encode(Unsafe.As<uint[]>(array), 5, format),
            6 => Encode(Unsafe.As<long[]>(array), 6, format),
            7 => Encode(Unsafe.As<ulong[]>(array), 7, format),
            8 => Encode(Unsafe.As<float[]>(array), 8, format),
            9 => Encode(Unsafe.As<double[]>(array), 9, format),
            10 => Encode(Unsafe.As<bool[]>(array), 10, format),
            11 => Encode(Unsafe.As<char[]>(array), 11, format),
            12 => Encode(Unsafe.As<decimal[]>(array), 12, format),
            _ => EncodeBytesOfBytes(Unsafe.As<byte[][]>(array), format),
        };
    }

    private static byte[] Encode<T>(T[] array, byte code, byte format) where T : unmanaged
    {
        var raw = MemoryMarshal.AsBytes(array.AsSpan());
        var bytes = GC.AllocateUninitializedArray<byte>(HeaderSize + raw.Length);
        WriteHeader(bytes, format, code, array.Length);
        raw.CopyTo(bytes.AsSpan(HeaderSize));
        return bytes;
    }

    private static byte[]? EncodeBytesOfBytes(byte[][] arrays, byte format)
    {
        long size = HeaderSize;
        foreach (var a in arrays)
            size += 4 + (a?.Length ?? 0);
        if (size > Array.MaxLength)
            return null;
        var bytes = GC.AllocateUninitializedArray<byte>((int)size);
        WriteHeader(bytes, format, BytesOfBytes, arrays.Length);
        var at = HeaderSize;
        foreach (var a in arrays)
        {
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), a?.Length ?? -1);
            at += 4;
            if (a is null)
                continue;
            a.CopyTo(bytes.AsSpan(at));
            at += a.Length;
        }
        return bytes;
    }

    private static void WriteHeader(byte[] bytes, byte format, byte code, int count)
    {
        bytes[0] = format;
        bytes[1] = code;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(2), count);
    }

    /// <summary>Decodes what follows the format byte (already read from <paramref name="stream"/>).</summary>
    public static Array Decode(Stream stream)
    {
        Span<byte> header = stackalloc byte[HeaderSize - 1];
        stream.ReadExactly(header);
        var code = header[0];
        var count = BinaryPrimitives.ReadInt32LittleEndian(header[1..]);
        if (code >= Types.Length || count < 0)
            throw new InvalidDataException($"Unknown raw array encoding (element code {code}, count {count}).");
        return code switch
        {
            0 => Read<byte>(stream, count),
            1 => Read<sbyte>(stream, count),
            2 => Read<short>(stream, count),
            3 => Read<ushort>(stream, count),
            4 => Read<int>(stream, count),
            5 => Read<uint>(stream, count),
            6 => Read<long>(stream, count),
            7 => Read<ulong>(stream, count),
            8 => Read<float>(stream, count),
            9 => Read<double>(stream, count),
            10 => Read<bool>(stream, count),
            11 => Read<char>(stream, count),
            12 => Read<decimal>(stream, count),
            _ => ReadBytesOfBytes(stream, count),
        };
    }

    private static T[] Read<T>(Stream stream, int count) where T : unmanaged
    {
        var array = GC.AllocateUninitializedArray<T>(count);
        stream.ReadExactly(MemoryMarshal.AsBytes(array.AsSpan()));
        return array;
    }

    private static byte[]?[] ReadBytesOfBytes(Stream stream, int count)
    {
        var arrays = new byte[]?[count];
        Span<byte> length = stackalloc byte[4];
        for (var i = 0; i < count; i++)
        {
            stream.ReadExactly(length);
            var n = BinaryPrimitives.ReadInt32LittleEndian(length);
            if (n < 0)
                continue;
            arrays[i] = GC.AllocateUninitializedArray<byte>(n);
            stream.ReadExactly(arrays[i]);
        }
        return arrays;
    }
}
