using System.Reflection;
using System.Runtime.CompilerServices;

namespace ActorPool.Execution;

/// <summary>
/// Serializes a call's function once per delegate when the delegate carries no state (a static method or a
/// lambda that captures nothing): repeated <c>apply</c> of the same function then costs no serialization.
/// A closure is serialized at every call, since its captured values may have changed.
/// </summary>
internal static class FunctionCache
{
    private static readonly ConditionalWeakTable<Delegate, byte[]> Cache = new();

    public static byte[] Get<TDelegate>(TDelegate function, Func<TDelegate, TaskFunction> wrap, string role) where TDelegate : Delegate
    {
        if (IsStateless(function) && Cache.TryGetValue(function, out var cached))
            return cached;
        var bytes = Payload.SerializeFunction(function, wrap(function), role);
        if (IsStateless(function))
            Cache.AddOrUpdate(function, bytes);
        return bytes;
    }

    /// <summary>Checks a user function that is wrapped by the pool before sending.</summary>
    public static void Check(Delegate function, string role) => Payload.SerializeFunction(function, function, role);

    private static bool IsStateless(Delegate d) =>
        d.Target is null || d.Target.GetType().GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic).Length == 0;
}
