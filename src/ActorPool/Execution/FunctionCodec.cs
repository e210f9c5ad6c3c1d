using System.Reflection;
using System.Runtime.CompilerServices;

namespace ActorPool.Execution;

/// <summary>
/// The fast path of <see cref="Payload"/> for a task function that captures nothing: a static method, or a lambda that
/// captures no variable (the compiler makes it an instance method of a stateless singleton). It travels as references to
/// its types and method (metadata tokens with their module's version id, and their names for a process whose build of
/// the assembly differs) and is rebuilt with reflection, so a new worker's first task builds no serializer (Hyperion's
/// took about 200 ms of a spawned worker's start, measured) and parses no type name (the first
/// <see cref="Type.GetType(string)"/> took about 30 ms of CPU). Anything else (a closure, a generic method) goes
/// through Hyperion.
/// </summary>
internal static class FunctionCodec
{
    // What wraps the delegate: the kind is the index.
    private static readonly Type[] Wrappers = [typeof(MapFunction<,>), typeof(ActionFunction<>), typeof(CancellableMapFunction<,>)];

    private const byte StaticMethod = 0, SingletonLambda = 1;

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
            var instance = target == SingletonLambda ? Singleton(declaring) : null;
            if (target is not (StaticMethod or SingletonLambda) || (target == SingletonLambda && instance is null))
                throw new InvalidDataException($"{declaring.FullName}.{name} is not a static method or a lambda that captures nothing.");
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
