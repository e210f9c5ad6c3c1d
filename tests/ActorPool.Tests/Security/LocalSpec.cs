using ActorPool.Coordination;
using ActorPool.Protocol;
using Akka.Actor;
using Akka.Serialization;
using Xunit;

namespace ActorPool.Tests.Security;

/// <summary>
/// What makes <see cref="Local"/> a proof: a wrapper made in this process is genuine; the same wrapper after any
/// serializer a remote sender could name (Hyperion, Akka's JSON) is not, nor is one made without the process's token.
/// </summary>
public class LocalSpec : Akka.TestKit.Xunit2.TestKit
{
    [Fact]
    public void A_wrapper_made_here_is_genuine()
    {
        var local = Local.Of(StopWorkers.Instance);
        Assert.True(local.IsGenuine);
        Assert.Same(StopWorkers.Instance, local.Message);
    }

    [Fact]
    public void A_wrapper_that_crossed_hyperion_is_not_genuine()
    {
        var hyperion = new Akka.Serialization.HyperionSerializer((ExtendedActorSystem)Sys);
        var copy = (Local)hyperion.FromBinary(hyperion.ToBinary(Local.Of(new EndCall(7))), typeof(Local));
        Assert.Equal(new EndCall(7), copy.Message); // the message survives ...
        Assert.False(copy.IsGenuine); // ... the proof does not
    }

    [Fact]
    public void A_wrapper_that_crossed_akkas_json_serializer_is_not_genuine()
    {
        var json = new NewtonSoftJsonSerializer((ExtendedActorSystem)Sys);
        Local? copy = null;
        try
        {
            copy = (Local?)json.FromBinary(json.ToBinary(Local.Of(new EndCall(7))), typeof(Local));
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            return; // it cannot even be made: no constructor it may call
        }
        Assert.False(copy?.IsGenuine ?? false);
    }

    [Fact]
    public void A_wrapper_made_without_the_token_is_not_genuine()
    {
        var forged = (Local)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(typeof(Local));
        Assert.False(forged.IsGenuine);
    }
}
