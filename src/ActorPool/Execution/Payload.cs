using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using Hyperion;

namespace ActorPool.Execution;

/// <summary>
/// Serializes what users hand to a pool (functions, their captured values, arguments, results) with Hyperion,
/// and checks before anything is dispatched that it can be rebuilt in a worker process, naming the culprit
/// when it cannot.
/// </summary>
internal static class Payload
{
    // Built on first use (about 100 ms in a new process): a worker whose functions, arguments and results all take
    // the fast paths never builds it.
    private static class HyperionSerializer
    {
        public static readonly Serializer Instance = new(SerializerOptions.Default
            .WithPreserveObjectReferences(true)
            .WithDisallowUnsafeType(true));
    }

    /// <summary>
    /// Runs the serializer's common paths once (a closure task function, arrays of numbers, strings and tuples), so
    /// the first real task does not pay for compiling them. Called off the hot path when a pool or worker starts.
    /// </summary>
    public static void WarmUp()
    {
        var k = Environment.ProcessorCount;
        TaskFunction fn = new MapFunction<(string, int), string>(t => t.Item1 + (t.Item2 * k));
        var copy = (TaskFunction)Deserialize(Serialize(fn))!;
        var outcome = copy.Run(Deserialize(SerializeItems(new[] { ("a", 1), ("b", 2) }, 0))!, new Worker.TaskClock());
        Deserialize(Serialize(outcome.Results));
        Deserialize(Serialize(new[] { 1, 2, 3 }));
        Deserialize(Serialize(new[] { 1.0, 2.0 }));
        Deserialize(Serialize(new object?[] { 1, "a", null }));
    }

    // The first byte of every serialized payload: how the rest is encoded.
    private const byte FormatHyperion = 0, FormatRaw = 1, FormatFunction = 2;

    public static byte[] Serialize(object? value)
    {
        if (RawArrays.TryEncode(value, FormatRaw) is { } raw)
            return raw;
        if (FunctionCodec.TryEncode(value, FormatFunction) is { } function)
            return function;
        using var stream = new MemoryStream();
        stream.WriteByte(FormatHyperion);
        HyperionSerializer.Instance.Serialize(value, stream);
        return stream.ToArray();
    }

    public static object? Deserialize(byte[] bytes)
    {
        using var stream = new MemoryStream(bytes, writable: false);
        return Deserialize(stream);
    }

    public static object? Deserialize(Stream stream) => stream.ReadByte() switch
    {
        FormatHyperion => HyperionSerializer.Instance.Deserialize(stream),
        FormatRaw => RawArrays.Decode(stream),
        FormatFunction => FunctionCodec.Decode(stream),
        var f => throw new InvalidDataException($"Unknown payload format {f}: the worker and the caller run different ActorPool versions."),
    };

    /// <summary>
    /// Serializes a task function after checking that a worker process can load its method and rebuild its
    /// captured values; the bytes are also deserialized once here, so a failure shows at the call.
    /// </summary>
    public static byte[] SerializeFunction(Delegate fn, object wrapper, string role)
    {
        CheckDelegate(fn, role);
        return SerializeChecked(() =>
        {
            var bytes = Serialize(wrapper);
            Deserialize(bytes);
            return bytes;
        }, $"the {role} {Describe(fn.Method)}");
    }

    /// <summary>
    /// Serializes a value for a worker or caller on this host: inline when small, else straight into a file of
    /// <paramref name="spillFolder"/> (when there is one).
    /// </summary>
    public static Blob SerializeToBlob(object? value, string? spillFolder)
    {
        if (spillFolder is not null && RawArrays.EncodedSize(value) is >= Spill.Threshold)
            return Spill.Write(spillFolder, stream => RawArrays.WriteTo(value!, stream, FormatRaw));
        return Spill.Pack(Serialize(value), spillFolder);
    }

    /// <summary>Serializes a chunk of arguments, naming the argument that cannot be sent.</summary>
    public static Blob SerializeItems<T>(T[] items, int firstIndex, string? spillFolder)
    {
        CheckItems(items, firstIndex);
        return SerializeChecked(() => SerializeToBlob(items, spillFolder), $"arguments {firstIndex}..{firstIndex + items.Length - 1}");
    }

    /// <inheritdoc cref="SerializeItems{T}(T[], int, string?)"/>
    public static byte[] SerializeItems<T>(T[] items, int firstIndex)
    {
        CheckItems(items, firstIndex);
        return SerializeChecked(() => Serialize(items), $"arguments {firstIndex}..{firstIndex + items.Length - 1}");
    }

    /// <summary>
    /// The arguments a delegate is called with: <paramref name="args"/>, then the default values of the optional
    /// parameters they leave out (as Python fills in defaults).
    /// </summary>
    /// <exception cref="ArgumentException">Too many arguments, or too few for the parameters without a default.</exception>
    public static object?[] BindArguments(Delegate target, object?[] args, string role, string argsName = "args")
    {
        var parameters = target.Method.GetParameters();
        var required = parameters.Count(p => !p.IsOptional);
        if (args.Length > parameters.Length || args.Length < required)
            throw new ArgumentException(
                $"The {role} {Describe(target.Method)} takes {(required == parameters.Length ? $"{parameters.Length}" : $"{required} to {parameters.Length}")} argument(s) " +
                (argsName == "args" ? $"but {args.Length} were given." : $"but {argsName} has {args.Length}."),
                argsName);
        if (args.Length == parameters.Length)
            return args;
        var bound = new object?[parameters.Length];
        args.CopyTo(bound, 0);
        for (var i = args.Length; i < parameters.Length; i++)
            bound[i] = parameters[i].HasDefaultValue ? parameters[i].DefaultValue : null;
        return bound;
    }

    /// <summary>Checks that a value of <typeparamref name="T"/> can go to another process, naming what cannot.</summary>
    public static void CheckSendable<T>(T value, string what)
    {
        CheckType(typeof(T), what);
        if (!typeof(T).IsValueType && typeof(T) != typeof(string))
            CheckValue(value, what, new HashSet<object>(ReferenceEqualityComparer.Instance), 0);
    }

    /// <summary>
    /// Checks a worker's results before they are sent back, by the rules arguments follow: a value bound to the worker's
    /// process (a thread, a stream, a handle) is a clear error naming the result, not a hollow copy for the caller.
    /// </summary>
    public static void CheckResults(Array results, string chunk)
    {
        var type = results.GetType().GetElementType()!;
        CheckType(type, $"the result type of {chunk}");
        if (type.IsValueType || type == typeof(string))
            return;
        for (var i = 0; i < results.Length; i++)
            CheckValue(results.GetValue(i), $"result {i} of {chunk}", new HashSet<object>(ReferenceEqualityComparer.Instance), 0);
    }

    private static void CheckItems<T>(T[] items, int firstIndex)
    {
        CheckType(typeof(T), "the argument type");
        if (!typeof(T).IsValueType && typeof(T) != typeof(string))
        {
            for (var i = 0; i < items.Length; i++)
                CheckValue(items[i], $"argument {firstIndex + i}", new HashSet<object>(ReferenceEqualityComparer.Instance), 0);
        }
    }

    private static TResult SerializeChecked<TResult>(Func<TResult> serialize, string what)
    {
        try
        {
            return serialize();
        }
        catch (Exception e) when (e is not NotSendableException and not SpillFullException)
        {
            throw new NotSendableException(
                $"{what} cannot be serialized for a worker process: {e.GetBaseException().Message} " +
                "Send plain data (numbers, strings, arrays, records, collections) and create resources inside the task.", e);
        }
    }

    private static void CheckDelegate(Delegate fn, string role, HashSet<object>? seen = null, int depth = 0)
    {
        var method = fn.Method;
        var name = Describe(method);
        if (fn.GetInvocationList().Length > 1)
            throw new NotSendableException($"The {role} {name} is a multicast delegate; pass a single method or lambda.");
        if (method is DynamicMethod || method.DeclaringType is null || method.Module.Assembly.IsDynamic)
            throw new NotSendableException(
                $"The {role} {name} was generated at run time (DynamicMethod, Expression.Compile or Reflection.Emit); " +
                "a worker process cannot load it. Use a static method or a lambda written in source.");
        var assembly = method.Module.Assembly;
        if (!IsLoadableByWorkers(assembly))
            throw new NotSendableException(
                $"The {role} {name} is in assembly '{assembly.GetName().Name}' loaded from '{assembly.Location}', which is not " +
                "part of the application's dependencies, so a worker process cannot load it. Reference that assembly from the application project.");
        if (fn.Target is null)
            return;
        try
        {
            // With the walk's own seen set: a closure that holds a delegate to itself is a cycle, not a tree.
            CheckValue(fn.Target, "captured values", seen ?? new HashSet<object>(ReferenceEqualityComparer.Instance), depth);
        }
        catch (NotSendableException e) when (depth == 0 && SharedClosureField(fn, e.Message) is { } field)
        {
            throw new NotSendableException(
                $"{e.Message} This lambda does not use '{field}' itself: C# keeps one closure object per scope, shared by every " +
                $"lambda of that scope, and another lambda of the same method captured '{field}'. Move that lambda (or " +
                "this one) into a method of its own, or copy what this one needs into a local variable of its own scope.", e);
        }
    }

    /// <summary>
    /// The captured variable a refusal names, when the delegate's own code never reads or writes it (so it is in the
    /// closure for a sibling lambda); null otherwise.
    /// </summary>
    private static string? SharedClosureField(Delegate fn, string message)
    {
        const string prefix = "Captured values.";
        if (!message.StartsWith(prefix, StringComparison.Ordinal) || fn.Target is not { } target)
            return null;
        var name = new string(message[prefix.Length..].TakeWhile(c => c != ' ' && c != '.' && c != '[').ToArray());
        var field = Fields(target.GetType()).FirstOrDefault(f => FieldName(f) == name);
        if (field is null || fn.Method.GetMethodBody()?.GetILAsByteArray() is not { } il)
            return null;
        // ldfld, ldflda, stfld (0x7B..0x7D), each followed by a 4-byte field token.
        for (var i = 0; i + 4 < il.Length; i++)
        {
            if (il[i] is < 0x7B or > 0x7D)
                continue;
            try
            {
                if (fn.Method.Module.ResolveField(BitConverter.ToInt32(il, i + 1), fn.Method.DeclaringType?.GetGenericArguments(), fn.Method.GetGenericArguments()) == field)
                    return null;
            }
            catch (Exception e) when (e is ArgumentException or BadImageFormatException)
            {
                // not a field token here: an operand byte of another instruction
            }
        }
        return name;
    }

    private static readonly Lazy<HashSet<string>> TrustedAssemblies = new(() =>
    {
        var tpa = AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") as string ?? "";
        return new HashSet<string>(tpa.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries), StringComparer.Ordinal);
    });

    private static bool IsLoadableByWorkers(Assembly assembly)
    {
        if (string.IsNullOrEmpty(assembly.Location))
            return false;
        if (TrustedAssemblies.Value.Contains(assembly.Location))
            return true;
        // Without a dependency list (rare hosts) fall back to the application folder.
        return Path.GetDirectoryName(assembly.Location) is { } dir &&
               string.Equals(Path.GetFullPath(dir).TrimEnd('/', '\\'), Path.GetFullPath(AppContext.BaseDirectory).TrimEnd('/', '\\'), StringComparison.Ordinal);
    }

    /// <summary>
    /// How deep an argument's or result's object graph may nest (objects inside objects): the serializer walks a graph
    /// recursively, so a deeper one (a linked list of 100,000 nodes, say) would overflow the stack of the process that
    /// sends or receives it. Refused at the call instead, naming the depth.
    /// </summary>
    public const int MaxDepth = 1000;

    [ThreadStatic]
    private static HashSet<string>? _seenOwners;

    /// <summary>
    /// The owners of the queue and lock handles found in what this thread checked since the last call (a function's
    /// captured values, arguments): null when none.
    /// </summary>
    public static HashSet<string>? TakeSeenOwners()
    {
        var seen = _seenOwners;
        _seenOwners = null;
        return seen;
    }

    /// <summary>Walks an object graph and rejects values bound to this process (handles, threads, streams).</summary>
    private static void CheckValue(object? value, string path, HashSet<object> seen, int depth)
    {
        if (value is null)
            return;
        var type = value.GetType();
        if (type.IsPrimitive || type.IsEnum || value is string || value is decimal || value is DateTime || value is Guid)
            return;
        if (depth >= MaxDepth)
            throw new NotSendableException(
                $"{Capitalize(Shorten(path))} nests more than {MaxDepth} objects deep (a {type.FullName} at depth {depth}); ActorPool " +
                $"serializes object graphs recursively and refuses deeper ones rather than overflow the stack. Flatten it (an array or " +
                "a list of nodes instead of nodes that point to each other).");
        if (!type.IsValueType && !seen.Add(value))
            return;
        CheckType(type, path);
        if (value is Hosting.IProcessHandle handle)
            (_seenOwners ??= []).Add(handle.OwnerPath);
        switch (value)
        {
            case Delegate d:
                CheckDelegate(d, $"delegate in {path}", seen, depth + 1);
                return;
            case Array array when array.GetType().GetElementType() is { IsPrimitive: true }:
                return;
            case Array array:
                var i = 0;
                foreach (var item in array)
                    CheckValue(item, $"{path}[{i++}]", seen, depth + 1);
                return;
        }
        foreach (var field in Fields(type))
            CheckValue(field.GetValue(value), $"{path}.{FieldName(field)}", seen, depth + 1);
    }

    private static readonly ConcurrentDictionary<Type, string?> TypeVerdicts = new();
    private static readonly ConcurrentDictionary<Type, string?> LoadVerdicts = new();

    private static readonly (Type Type, string Why)[] ProcessBound =
    [
        (typeof(System.Runtime.InteropServices.SafeHandle), "it wraps an operating-system handle"),
        (typeof(Stream), "it is a stream bound to this process"),
        (typeof(Thread), "threads cannot move between processes"),
        (typeof(Task), "tasks cannot move between processes; send the value, not the task"),
        (typeof(WaitHandle), "it wraps an operating-system handle"),
        (typeof(CancellationTokenSource), "it is bound to this process"),
        (typeof(System.Diagnostics.Process), "it is bound to this process"),
        (typeof(Akka.Actor.ActorSystem), "an ActorSystem cannot move between processes"),
        (typeof(Pool), "a pool cannot be used from its own workers"),
        (typeof(IntPtr), "a native pointer is meaningless in another process"),
        (typeof(UIntPtr), "a native pointer is meaningless in another process"),
    ];

    /// <summary>
    /// Whether Hyperion's list of types dangerous to deserialize holds <paramref name="type"/> (asked by rebuilding the
    /// type itself once; numbers and strings are never on it, and do not make a worker build the serializer).
    /// </summary>
    private static bool RefusedByHyperion(Type type)
    {
        if (type.IsPrimitive || type.IsEnum || type == typeof(string) || type == typeof(decimal) || type.IsArray || type.IsGenericType)
            return false;
        try
        {
            using var stream = new MemoryStream();
            HyperionSerializer.Instance.Serialize(type, stream);
            stream.Position = 0;
            HyperionSerializer.Instance.Deserialize(stream);
            return false;
        }
        catch (Hyperion.Internal.EvilDeserializationException)
        {
            return true;
        }
        catch (Exception)
        {
            return false; // not this check's to judge: the value's own serialization reports it
        }
    }

    private static void CheckType(Type type, string path)
    {
        var why = TypeVerdicts.GetOrAdd(type, static t =>
        {
            if (t.IsPointer)
                return "a native pointer is meaningless in another process";
            foreach (var (bound, reason) in ProcessBound)
                if (bound.IsAssignableFrom(t))
                    return reason;
            return RefusedByHyperion(t)
                ? "it is a type known to be dangerous to deserialize, which the serializer refuses to rebuild in another process"
                : null;
        });
        var result = path.StartsWith("result", StringComparison.Ordinal) || path.StartsWith("the result", StringComparison.Ordinal);
        // A type a worker cannot load (a plugin's, loaded from outside the application's dependencies) fails here, at the
        // call, not in the worker. (Results go back to the caller, which has the assembly: a node's plugin types are fine.)
        if (why is null && !result)
            why = LoadVerdicts.GetOrAdd(type, static t =>
            {
                foreach (var part in TypesOf(t))
                    if (part.Assembly.IsDynamic || !IsLoadableByWorkers(part.Assembly))
                        return $"its type comes from assembly '{part.Assembly.GetName().Name}'" +
                               (part.Assembly.IsDynamic ? ", generated at run time" : $" loaded from '{part.Assembly.Location}', which is not part of the application's dependencies") +
                               ", so a worker process cannot load it; reference that assembly from the application project";
                return null;
            });
        if (why is null)
            return;
        if (result)
            throw new NotSendableException(
                $"{Capitalize(path)} is a {type.FullName}, which cannot be sent back from the worker process: {why}. " +
                "Return plain data (numbers, strings, arrays, records, collections) that describes it instead.");
        throw new NotSendableException(
            $"{Capitalize(path)} is a {type.FullName}, which cannot be sent to a worker process: {why}. " +
            "Create it inside the task (or in the pool's initializer) instead of capturing or passing it.");
    }

    /// <summary>A type and the types it is built from (array elements, generic arguments).</summary>
    private static IEnumerable<Type> TypesOf(Type type)
    {
        yield return type;
        if (type.HasElementType && type.GetElementType() is { } element)
            foreach (var t in TypesOf(element))
                yield return t;
        if (type.IsGenericType)
            foreach (var argument in type.GetGenericArguments())
                foreach (var t in TypesOf(argument))
                    yield return t;
    }

    private static IEnumerable<FieldInfo> Fields(Type type)
    {
        for (var t = type; t is not null && t != typeof(object); t = t.BaseType)
            foreach (var f in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
                if (!f.IsDefined(typeof(Hyperion.IgnoreAttribute), inherit: false)) // not sent: what this process keeps for itself
                    yield return f;
    }

    private static string FieldName(FieldInfo field)
    {
        // Compiler-generated names: <x>5__2, <>4__this, <Name>k__BackingField.
        var n = field.Name;
        if (n == "<>4__this") return "this";
        if (n.StartsWith('<') && n.IndexOf('>') is > 1 and var end) return n[1..end];
        return n;
    }

    internal static string Describe(MethodInfo method)
    {
        var type = method.DeclaringType;
        while (type is not null && type.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute), false) && type.DeclaringType is not null)
            type = type.DeclaringType;
        return method.Name.StartsWith('<') ? $"(lambda in {type?.FullName})" : $"{type?.FullName}.{method.Name}";
    }

    /// <summary>A path into a deep graph, with its middle left out.</summary>
    private static string Shorten(string path) => path.Length <= 120 ? path : $"{path[..60]}...{path[^50..]}";

    private static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
}
