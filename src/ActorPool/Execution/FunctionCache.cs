using System.Reflection;
using System.Runtime.CompilerServices;

namespace ActorPool.Execution;

/// <summary>
/// Serializes a call's function once per delegate when the delegate carries no state (a static method or a
/// lambda that captures nothing): repeated <c>apply</c> of the same function then costs no serialization.
/// A closure is serialized at every call, since its captured values may have changed.
/// </summary>
/// <summary>
/// A call's function as bytes. <see cref="SharedKey"/> is non-zero for a function without state: workers may keep
/// its deserialized form under that key and reuse it for later calls (no per-call deserialization).
/// </summary>
internal sealed record SerializedFunction(byte[] Bytes, long SharedKey);

internal static class FunctionCache
{
    private static readonly ConditionalWeakTable<Delegate, SerializedFunction> Cache = new();
    private static long _lastKey;

    public static SerializedFunction Get<TDelegate>(TDelegate function, Func<TDelegate, TaskFunction> wrap, string role) where TDelegate : Delegate
    {
        if (!IsStateless(function))
            return new SerializedFunction(Payload.SerializeFunction(function, wrap(function), role), 0);
        if (Cache.TryGetValue(function, out var cached))
            return cached;
        var serialized = new SerializedFunction(Payload.SerializeFunction(function, wrap(function), role), Interlocked.Increment(ref _lastKey));
        Cache.AddOrUpdate(function, serialized);
        return serialized;
    }

    /// <summary>Checks a user function that is wrapped by the pool before sending.</summary>
    public static void Check(Delegate function, string role) => Payload.SerializeFunction(function, function, role);

    private static bool IsStateless(Delegate d) =>
        d.Target is null || d.Target.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Length == 0;
}
