using ActorPool.Configuration;
using ActorPool.Logging;
using Akka.Actor;
using Akka.Configuration;
using Akka.Event;
using Microsoft.Extensions.Logging.Abstractions;
using Xunit;

namespace ActorPool.Tests.Logging;

/// <summary>
/// Akka's fallback console logger in a pool's ActorSystem: what was still queued for the logging bridge when it stopped
/// reaches it; remoting's noise about exited workers must not be printed, a real error must.
/// </summary>
[Collection("console")]
public class QuietStdoutLoggerSpec
{
    [Fact]
    public async Task A_pool_system_must_use_the_quiet_fallback_logger_that_drops_remoting_noise_and_prints_real_errors()
    {
        var system = PoolActorSystem.Create("quiet-spec", ConfigurationFactory.ParseString("akka.actor.provider = local").WithFallback(PoolSettings.Reference),
            NullLoggerFactory.Instance);
        try
        {
            var logger = Assert.IsType<QuietStdoutLogger>(system.Settings.StdoutLogger);
            var original = Console.Error;
            var captured = new StringWriter();
            Console.SetError(captured);
            try
            {
                logger.Tell(new Error(new Exception("Disassociated"), "akka://actorpool/system/endpointManager/endpointWriter", typeof(object), "Disassociated"));
                logger.Tell(new Warning("remoting", typeof(object), "Association with remote system akka.tcp://actorpool-worker@127.0.0.1:1 has failed; address is now gated"));
                logger.Tell(new Info("x", typeof(object), "an info line"));
                Assert.Equal("", captured.ToString());

                logger.Tell(new Error(null, "coordinator", typeof(object), "the disk is on fire"));
                Assert.Contains("the disk is on fire", captured.ToString());
            }
            finally
            {
                Console.SetError(original);
            }
        }
        finally
        {
            await system.Terminate();
        }
    }
}

[CollectionDefinition("console", DisableParallelization = true)]
public sealed class ConsoleCollection;

/// <summary>Which of remoting's warnings are the expected noise of a child or worker process that has just ended.</summary>
public class ExpectedNoiseSpec
{
    [Theory]
    [InlineData("Detected unreachable: [akka.ssl.tcp://actorpool-client@127.0.0.1:40411]", true)]
    [InlineData("Detected unreachable: [akka.tcp://actorpool-worker@127.0.0.1:40411]", true)]
    [InlineData("Detected unreachable: [akka.ssl.tcp://actorpool@10.0.0.7:2552]", false)] // a cluster member: worth a warning
    [InlineData("Association with remote system akka.ssl.tcp://actorpool-client@127.0.0.1:1 has failed", true)]
    [InlineData("Task 3 failed in worker w1", false)]
    public void Exited_processes_remoting_warnings_must_be_noise_and_nothing_else(string line, bool noise) =>
        Assert.Equal(noise, ExpectedEventsAsDebug.Noise().IsMatch(line));
}
