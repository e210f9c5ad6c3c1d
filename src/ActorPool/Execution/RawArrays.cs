using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ActorPool.Execution;

/// <summary>
/// The fast path of <see cref="Payload"/>: arrays of primitive numbers travel as their raw memory (a copy, no
/// per-element work), arrays of byte arrays as lengths and bytes, and arrays of strings as lengths and UTF-16 code units
/// (exact: a lone surrogate survives, which UTF-8 would replace). Everything else goes through Hyperion.
/// </summary>
internal static class RawArrays
{
    private const int HeaderSize = 6; // format, element code, count

    // The element types by code; the code is the index.
    private static readonly Type[] Types =
    [
        typeof(byte), typeof(sbyte), typeof(short), typeof(ushort), typeof(int), typeof(uint), typeof(long), typeof(ulong),
        typeof(float), typeof(double), typeof(bool), typeof(char), typeof(decimal), typeof(byte[]), typeof(string),
    ];

    private const byte BytesOfBytes = 13, Strings = 14;

    /// <summary>The size of <paramref name="value"/>'s raw encoding, or null when it has none.</summary>
    public static long? EncodedSize(object? value)
    {
        if (Code(value) is not { } code)
            return null;
        var array = (Array)value!;
        var size = (long)HeaderSize;
        switch (code)
        {
            case BytesOfBytes:
                foreach (var a in Unsafe.As<byte[][]>(array))
                    size += 4 + (a?.Length ?? 0);
                return size;
            case Strings:
                foreach (var s in Unsafe.As<string[]>(array))
                    size += 4 + 2L * (s?.Length ?? 0);
                return size;
            default:
                return size + (long)array.Length * ElementSizes[code];
        }
    }

    /// <summary>The raw encoding of <paramref name="value"/> in a new array, or null when it has none.</summary>
    public static byte[]? TryEncode(object? value, byte format)
    {
        if (EncodedSize(value) is not { } size || size > Array.MaxLength)
            return null;
        var bytes = GC.AllocateUninitializedArray<byte>((int)size);
        WriteTo(value!, new MemoryStream(bytes), format);
        return bytes;
    }

    /// <summary>Writes the raw encoding of a value for which <see cref="EncodedSize"/> is not null.</summary>
    public static void WriteTo(object value, Stream stream, byte format)
    {
        var array = (Array)value;
        var code = Code(value)!.Value;
        Span<byte> header = stackalloc byte[HeaderSize];
        header[0] = format;
        header[1] = code;
        BinaryPrimitives.WriteInt32LittleEndian(header[2..], array.Length);
        stream.Write(header);
        switch (code)
        {
            case BytesOfBytes:
                Span<byte> length = stackalloc byte[4];
                foreach (var a in Unsafe.As<byte[][]>(array))
                {
                    BinaryPrimitives.WriteInt32LittleEndian(length, a?.Length ?? -1);
                    stream.Write(length);
                    if (a is not null)
                        stream.Write(a);
                }
                break;
            case Strings:
                Span<byte> chars = stackalloc byte[4];
                foreach (var s in Unsafe.As<string[]>(array))
                {
                    BinaryPrimitives.WriteInt32LittleEndian(chars, s?.Length ?? -1);
                    stream.Write(chars);
                    if (s is not null)
                        stream.Write(MemoryMarshal.AsBytes(s.AsSpan()));
                }
                break;
            default:
                // The array's memory as it is: every type here is a blittable primitive.
                stream.Write(MemoryMarshal.CreateReadOnlySpan(ref MemoryMarshal.GetArrayDataReference(array),
                    checked(array.Length * ElementSizes[code])));
                break;
        }
    }

    private static readonly int[] ElementSizes = [1, 1, 2, 2, 4, 4, 8, 8, 4, 8, 1, 2, 16];

    private static byte? Code(object? value)
    {
        if (value is not Array array || !BitConverter.IsLittleEndian)
            return null;
        // By exact type: the runtime lets a uint[] pass as an int[] (and sbyte[] as byte[]), so patterns would mix them up.
        var code = Array.IndexOf(Types, array.GetType().GetElementType());
        if (code < 0 || array.GetType() != Types[code].MakeArrayType())
            return null;
        return (byte)code;
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
            BytesOfBytes => ReadBytesOfBytes(stream, count),
            _ => ReadStrings(stream, count),
        };
    }

    /// <summary>
    /// A count read from the data is checked against the bytes that follow it before anything is allocated: four
    /// bytes that claim 200 million elements are an error, not 800 MB.
    /// </summary>
    private static void CheckFits(Stream stream, long count, int elementSize)
    {
        if (stream.CanSeek && count * elementSize > stream.Length - stream.Position)
            throw new InvalidDataException(
                $"A raw array claims {count:N0} elements of {elementSize} bytes but only {stream.Length - stream.Position:N0} bytes follow: the data is damaged or forged.");
    }

    private static T[] Read<T>(Stream stream, int count) where T : unmanaged
    {
        CheckFits(stream, count, System.Runtime.CompilerServices.Unsafe.SizeOf<T>());
        var array = GC.AllocateUninitializedArray<T>(count);
        stream.ReadExactly(MemoryMarshal.AsBytes(array.AsSpan()));
        return array;
    }

    private static string?[] ReadStrings(Stream stream, int count)
    {
        CheckFits(stream, count, 4);
        var strings = new string?[count];
        Span<byte> length = stackalloc byte[4];
        var buffer = Array.Empty<char>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                stream.ReadExactly(length);
                var n = BinaryPrimitives.ReadInt32LittleEndian(length);
                if (n < 0)
                    continue;
                CheckFits(stream, n, 2);
                if (buffer.Length < n)
                {
                    if (buffer.Length > 0)
                        System.Buffers.ArrayPool<char>.Shared.Return(buffer);
                    buffer = System.Buffers.ArrayPool<char>.Shared.Rent(n);
                }
                var span = buffer.AsSpan(0, n);
                stream.ReadExactly(MemoryMarshal.AsBytes(span));
                strings[i] = n == 0 ? "" : new string(span);
            }
        }
        finally
        {
            if (buffer.Length > 0)
                System.Buffers.ArrayPool<char>.Shared.Return(buffer);
        }
        return strings;
    }

    private static byte[]?[] ReadBytesOfBytes(Stream stream, int count)
    {
        CheckFits(stream, count, 4);
        var arrays = new byte[]?[count];
        Span<byte> length = stackalloc byte[4];
        for (var i = 0; i < count; i++)
        {
            stream.ReadExactly(length);
            var n = BinaryPrimitives.ReadInt32LittleEndian(length);
            if (n < 0)
                continue;
            CheckFits(stream, n, 1);
            arrays[i] = GC.AllocateUninitializedArray<byte>(n);
            stream.ReadExactly(arrays[i]);
        }
        return arrays;
    }
}
