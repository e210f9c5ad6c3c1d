using System.Reflection;
using System.Runtime.CompilerServices;

namespace ActorPool.Execution;

/// <summary>
/// The fast path of <see cref="Payload"/> for a task function that captures nothing but plain values: a static method, a
/// lambda that captures no variable (the compiler makes it an instance method of a stateless singleton), or one whose
/// captured variables are all numbers, strings and the like (their values travel too). It travels as references to
/// its types and method (metadata tokens with their module's version id, and their names for a process whose build of
/// the assembly differs) and is rebuilt with reflection, so a new worker's first task builds no serializer (Hyperion's
/// took about 200 ms of a spawned worker's start, measured) and parses no type name (the first
/// <see cref="Type.GetType(string)"/> took about 30 ms of CPU). Anything else (a closure over an object, over <c>this</c>
/// or an outer scope; a generic method) goes through Hyperion.
/// </summary>
internal static class FunctionCodec
{
    // What wraps the delegate: the kind is the index.
    private static readonly Type[] Wrappers = [typeof(MapFunction<,>), typeof(ActionFunction<>), typeof(CancellableMapFunction<,>)];

    private const byte StaticMethod = 0, SingletonLambda = 1, ScalarClosure = 2;

    // What a closure may capture and still take this path: numbers, strings and the like, written as their values.
    private static readonly Type[] Scalars =
    [
        typeof(bool), typeof(byte), typeof(sbyte), typeof(short), typeof(ushort), typeof(int), typeof(uint), typeof(long),
        typeof(ulong), typeof(float), typeof(double), typeof(decimal), typeof(char), typeof(string), typeof(DateTime),
        typeof(TimeSpan), typeof(Guid),
    ];

    // At most this many captured values (a closure over more goes through Hyperion).
    private const int MaxCaptured = 32;

    // The field of the compiler's singleton for lambdas that capture nothing (C#: <>9 in the nested <>c class).
    private const string SingletonField = "<>9";

    // How a type is written: one of the common ones by its index here, or one of these forms.
    private static readonly Type[] Common =
    [
        typeof(bool), typeof(byte), typeof(sbyte), typeof(short), typeof(ushort), typeof(int), typeof(uint), typeof(long),
        typeof(ulong), typeof(float), typeof(double), typeof(decimal), typeof(char), typeof(string), typeof(object),
        typeof(DateTime), typeof(DateTimeOffset), typeof(TimeSpan), typeof(Guid), typeof(byte[]),
    ];

    private const byte ByToken = 0xF0, ArrayOf = 0xF1, GenericOf = 0xF2;

    // Nesting is bounded when reading: the writer never nests deeper than a type does.
    private const int MaxDepth = 16;

    /// <summary>The encoding of <paramref name="function"/> after <paramref name="format"/>, or null when it has none.</summary>
    public static byte[]? TryEncode(object? function, byte format)
    {
        if (function is not TaskFunction task || !task.GetType().IsGenericType)
            return null;
        var kind = Array.IndexOf(Wrappers, task.GetType().GetGenericTypeDefinition());
        var fn = task.UserDelegate;
        var method = fn.Method;
        if (kind < 0 || method.IsGenericMethod || method.DeclaringType is not { IsGenericType: false } declaring
            || fn.GetInvocationList().Length > 1)
            return null;
        byte target;
        if (fn.Target is null && method.IsStatic)
            target = StaticMethod;
        else if (fn.Target is { } singleton && IsStatelessSingleton(declaring, singleton))
            target = SingletonLambda;
        else if (fn.Target is { } closure && ScalarFields(declaring, closure) is not null)
            target = ScalarClosure;
        else
            return null;
        var arguments = task.GetType().GetGenericArguments();
        if (!arguments.All(CanWrite) || !CanWrite(declaring))
            return null;

        using var stream = new MemoryStream();
        using (var writer = new BinaryWriter(stream, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(format);
            writer.Write((byte)kind);
            writer.Write((byte)arguments.Length);
            foreach (var argument in arguments)
                WriteType(writer, argument);
            WriteType(writer, declaring);
            writer.Write(method.Module.ModuleVersionId.ToByteArray());
            writer.Write(method.MetadataToken);
            writer.Write(method.Name);
            writer.Write(target);
            if (target == ScalarClosure)
            {
                var fields = ScalarFields(declaring, fn.Target!)!;
                writer.Write((byte)fields.Length);
                foreach (var field in fields)
                {
                    writer.Write(field.Name);
                    WriteScalar(writer, field.FieldType, field.GetValue(fn.Target));
                }
            }
        }
        return stream.ToArray();
    }

    /// <summary>Rebuilds a function written by <see cref="TryEncode"/> (the format byte already read).</summary>
    /// <exception cref="InvalidDataException">The bytes do not name a function this process can load.</exception>
    public static TaskFunction Decode(Stream stream)
    {
        using var reader = new BinaryReader(stream, System.Text.Encoding.UTF8, leaveOpen: true);
        try
        {
            var kind = reader.ReadByte();
            if (kind >= Wrappers.Length)
                throw new InvalidDataException($"Unknown task function kind {kind}.");
            var wrapper = Wrappers[kind];
            var count = reader.ReadByte();
            if (count != wrapper.GetGenericArguments().Length)
                throw new InvalidDataException($"A task function of kind {kind} has {wrapper.GetGenericArguments().Length} type arguments, not {count}.");
            var arguments = new Type[count];
            for (var i = 0; i < count; i++)
                arguments[i] = ReadType(reader, 0);
            var declaring = ReadType(reader, 0);
            var version = new Guid(reader.ReadBytes(16));
            var token = reader.ReadInt32();
            var name = reader.ReadString();
            var target = reader.ReadByte();
            var closed = wrapper.MakeGenericType(arguments);
            var delegateType = closed.GetConstructors()[0].GetParameters()[0].ParameterType;
            var instance = target switch
            {
                SingletonLambda => Singleton(declaring),
                ScalarClosure => ReadClosure(reader, declaring),
                _ => null,
            };
            if (target is not (StaticMethod or SingletonLambda or ScalarClosure) || (target != StaticMethod && instance is null))
                throw new InvalidDataException($"{declaring.FullName}.{name} is not a static method or a lambda over plain values.");
            var fn = declaring.Module.ModuleVersionId == version && declaring.Module.ResolveMethod(token) is MethodInfo method
                     && method.DeclaringType == declaring && method.Name == name
                ? instance is null ? method.CreateDelegate(delegateType) : method.CreateDelegate(delegateType, instance)
                // Another build of the assembly (a worker node deployed apart): the method by its name and signature.
                : instance is null ? Delegate.CreateDelegate(delegateType, declaring, name) : Delegate.CreateDelegate(delegateType, instance, name);
            return (TaskFunction)Activator.CreateInstance(closed, fn)!;
        }
        catch (Exception e) when (e is EndOfStreamException or ArgumentException or BadImageFormatException or TypeLoadException
                                      or FileNotFoundException or FileLoadException or MissingMethodException or MethodAccessException)
        {
            throw new InvalidDataException($"The task function cannot be rebuilt in this process: {e.Message}", e);
        }
    }

    /// <summary>
    /// The fields of a compiler-made closure (a display class) when every one holds a plain value (<see cref="Scalars"/>,
    /// an enum); null otherwise (it captures an object, <c>this</c>, an outer scope, or is not the compiler's).
    /// </summary>
    private static FieldInfo[]? ScalarFields(Type declaring, object target)
    {
        if (target.GetType() != declaring || !declaring.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) || declaring.IsValueType)
            return null;
        var fields = declaring.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        if (fields.Length is 0 or > MaxCaptured || declaring.GetConstructor(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic, Type.EmptyTypes) is null)
            return null;
        return fields.All(f => Array.IndexOf(Scalars, f.FieldType) >= 0 || f.FieldType.IsEnum) ? fields.OrderBy(f => f.Name, StringComparer.Ordinal).ToArray() : null;
    }

    private static void WriteScalar(BinaryWriter writer, Type type, object? value)
    {
        if (type.IsEnum)
        {
            writer.Write(Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture));
            return;
        }
        switch (value)
        {
            case null: writer.Write(false); break; // a null string
            case string s: writer.Write(true); writer.Write(s); break;
            case bool v: writer.Write(v); break;
            case byte v: writer.Write(v); break;
            case sbyte v: writer.Write(v); break;
            case short v: writer.Write(v); break;
            case ushort v: writer.Write(v); break;
            case int v: writer.Write(v); break;
            case uint v: writer.Write(v); break;
            case long v: writer.Write(v); break;
            case ulong v: writer.Write(v); break;
            case float v: writer.Write(v); break;
            case double v: writer.Write(v); break;
            case decimal v: writer.Write(v); break;
            case char v: writer.Write(v); break;
            case DateTime v: writer.Write(v.ToBinary()); break;
            case TimeSpan v: writer.Write(v.Ticks); break;
            case Guid v: writer.Write(v.ToByteArray()); break;
            default: throw new ArgumentException($"A captured {type} is not a plain value.");
        }
    }

    private static object? ReadScalar(BinaryReader reader, Type type)
    {
        if (type.IsEnum)
            return Enum.ToObject(type, reader.ReadInt64());
        return Type.GetTypeCode(type) switch
        {
            TypeCode.String => reader.ReadBoolean() ? reader.ReadString() : null,
            TypeCode.Boolean => reader.ReadBoolean(),
            TypeCode.Byte => reader.ReadByte(),
            TypeCode.SByte => reader.ReadSByte(),
            TypeCode.Int16 => reader.ReadInt16(),
            TypeCode.UInt16 => reader.ReadUInt16(),
            TypeCode.Int32 => reader.ReadInt32(),
            TypeCode.UInt32 => reader.ReadUInt32(),
            TypeCode.Int64 => reader.ReadInt64(),
            TypeCode.UInt64 => reader.ReadUInt64(),
            TypeCode.Single => reader.ReadSingle(),
            TypeCode.Double => reader.ReadDouble(),
            TypeCode.Decimal => reader.ReadDecimal(),
            TypeCode.Char => reader.ReadChar(),
            TypeCode.DateTime => DateTime.FromBinary(reader.ReadInt64()),
            _ when type == typeof(TimeSpan) => new TimeSpan(reader.ReadInt64()),
            _ when type == typeof(Guid) => new Guid(reader.ReadBytes(16)),
            _ => throw new InvalidDataException($"A captured {type} is not a plain value."),
        };
    }

    /// <summary>A closure of <paramref name="declaring"/> with the values read into its fields (checked by name and type).</summary>
    private static object ReadClosure(BinaryReader reader, Type declaring)
    {
        var expected = declaring.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false)
            ? declaring.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)
            : throw new InvalidDataException($"{declaring.FullName} is not a compiler-made closure.");
        var count = reader.ReadByte();
        if (count != expected.Length)
            throw new InvalidDataException($"A closure of {declaring.FullName} holds {expected.Length} values, not {count}.");
        var closure = Activator.CreateInstance(declaring, nonPublic: true)!;
        for (var i = 0; i < count; i++)
        {
            var name = reader.ReadString();
            var field = expected.FirstOrDefault(f => f.Name == name)
                        ?? throw new InvalidDataException($"A closure of {declaring.FullName} has no field '{name}'.");
            if (Array.IndexOf(Scalars, field.FieldType) < 0 && !field.FieldType.IsEnum)
                throw new InvalidDataException($"The field '{name}' of {declaring.FullName} does not hold a plain value.");
            field.SetValue(closure, ReadScalar(reader, field.FieldType));
        }
        return closure;
    }

    /// <summary>Whether <see cref="WriteType"/> can write <paramref name="type"/>.</summary>
    private static bool CanWrite(Type type) =>
        Array.IndexOf(Common, type) >= 0
        || (type.IsSZArray && CanWrite(type.GetElementType()!))
        || (type.IsConstructedGenericType && CanWrite(type.GetGenericTypeDefinition()) && type.GetGenericArguments().All(CanWrite))
        || (!type.IsArray && !type.IsPointer && !type.IsByRef && !type.IsGenericParameter && !type.IsConstructedGenericType
            && type.AssemblyQualifiedName is not null && !type.Assembly.IsDynamic);

    private static void WriteType(BinaryWriter writer, Type type)
    {
        if (Array.IndexOf(Common, type) is var common and >= 0)
        {
            writer.Write((byte)common);
        }
        else if (type.IsSZArray)
        {
            writer.Write(ArrayOf);
            WriteType(writer, type.GetElementType()!);
        }
        else if (type.IsConstructedGenericType)
        {
            writer.Write(GenericOf);
            WriteType(writer, type.GetGenericTypeDefinition());
            var arguments = type.GetGenericArguments();
            writer.Write((byte)arguments.Length);
            foreach (var argument in arguments)
                WriteType(writer, argument);
        }
        else
        {
            writer.Write(ByToken);
            writer.Write(type.Assembly.GetName().Name!);
            writer.Write(type.Module.ModuleVersionId.ToByteArray());
            writer.Write(type.MetadataToken);
            writer.Write(type.AssemblyQualifiedName!);
        }
    }

    private static Type ReadType(BinaryReader reader, int depth)
    {
        if (depth > MaxDepth)
            throw new InvalidDataException($"A task function's type nests deeper than {MaxDepth}.");
        var code = reader.ReadByte();
        switch (code)
        {
            case < ByToken when code < Common.Length:
                return Common[code];
            case ArrayOf:
                return ReadType(reader, depth + 1).MakeArrayType();
            case GenericOf:
            {
                var definition = ReadType(reader, depth + 1);
                var arguments = new Type[reader.ReadByte()];
                for (var i = 0; i < arguments.Length; i++)
                    arguments[i] = ReadType(reader, depth + 1);
                return definition.MakeGenericType(arguments);
            }
            case ByToken:
            {
                var assemblyName = reader.ReadString();
                var version = new Guid(reader.ReadBytes(16));
                var token = reader.ReadInt32();
                var name = reader.ReadString();
                var assembly = Assembly.Load(new AssemblyName { Name = assemblyName });
                if (assembly.ManifestModule.ModuleVersionId == version && assembly.ManifestModule.ResolveType(token) is { } type)
                    return type;
                return Type.GetType(name, throwOnError: false) ?? throw new InvalidDataException($"Type '{name}' cannot be loaded in this process.");
            }
            default:
                throw new InvalidDataException($"Unknown type code {code} in a task function.");
        }
    }

    private static bool IsStatelessSingleton(Type declaring, object target) =>
        target.GetType() == declaring
        && declaring.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Length == 0
        && ReferenceEquals(Singleton(declaring), target);

    private static object? Singleton(Type declaring) =>
        declaring.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false)
        && declaring.GetField(SingletonField, BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic) is { } field
        && field.FieldType == declaring
            ? field.GetValue(null)
            : null;
}
