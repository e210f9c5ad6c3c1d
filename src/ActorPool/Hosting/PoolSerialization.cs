using System.Runtime.CompilerServices;
using ActorPool.Protocol;
using Akka.Actor;
using Akka.Serialization;

namespace ActorPool.Hosting;

/// <summary>
/// Binds ActorPool's messages to their serializers in an ActorSystem the pool did not configure (an application's
/// own): what reference.conf's <c>serialization-bindings</c> do for the pool's own systems.
/// </summary>
internal static class PoolSerialization
{
    private static readonly ConditionalWeakTable<ActorSystem, object> Registered = new();

    public static void Register(ActorSystem system)
    {
        lock (Registered)
        {
            if (Registered.TryGetValue(system, out _))
                return;
            var extended = (ExtendedActorSystem)system;
            var serialization = system.Serialization;
            var hyperion = new HyperionSerializer(extended);
            var protocol = new ProtocolSerializer(extended);
            serialization.AddSerializer("actorpool-hyperion", hyperion);
            serialization.AddSerializer("actorpool", protocol);
            serialization.AddSerializationMap(typeof(IPoolMessage), hyperion);
            foreach (var type in new[] { typeof(RunChunk), typeof(RunChunks), typeof(ChunkDone), typeof(ChunksDone) })
                serialization.AddSerializationMap(type, protocol);
            Registered.Add(system, new object());
        }
    }
}
