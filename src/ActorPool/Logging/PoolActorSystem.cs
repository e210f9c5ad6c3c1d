using System.Text.RegularExpressions;
using Akka.Actor;
using Akka.Actor.Setup;
using Akka.Configuration;
using Akka.Hosting.Logging;
using Microsoft.Extensions.Logging;

namespace ActorPool.Logging;

/// <summary>Creates the ActorSystem a pool owns, with Akka's logging bridged to Microsoft.Extensions.Logging.</summary>
internal static class PoolActorSystem
{
    private static readonly Config LoggingConfig = ConfigurationFactory.ParseString("""
        akka.loggers = ["Akka.Hosting.Logging.LoggerFactoryLogger, Akka.Hosting"]
        akka.stdout-logger-class = "ActorPool.Logging.QuietStdoutLogger, ActorPool"
        """);

    public static ActorSystem Create(string name, Config config, ILoggerFactory loggerFactory, Setup? extra = null)
    {
        // Akka filters before the bridge does: log at the most detailed level the application listens to. Akka's
        // fallback console logger, which takes over while the system starts and stops, stays silent: what it
        // would print then is remoting noise about workers that have just exited (as under load, when their
        // disassociation is handled after the bridge has stopped). What is still in the bridge's mailbox when it
        // stops goes to the fallback logger whatever its level: QuietStdoutLogger drops that noise too.
        var probe = loggerFactory.CreateLogger("Akka");
        var level = probe.IsEnabled(LogLevel.Debug) ? "DEBUG"
            : probe.IsEnabled(LogLevel.Information) ? "INFO"
            : probe.IsEnabled(LogLevel.Warning) ? "WARNING" : "ERROR";
        var levels = ConfigurationFactory.ParseString($"akka.loglevel = {level}\nakka.stdout-loglevel = OFF");
        var setup = BootstrapSetup.Create()
            .WithConfig(levels.WithFallback(LoggingConfig).WithFallback(config))
            .And(new LoggerFactorySetup(new ExpectedEventsAsDebug(loggerFactory)));
        if (extra is not null)
            setup = setup.And(extra);
        return ActorSystem.Create(name, setup);
    }
}

/// <summary>
/// Akka's fallback console logger (<c>akka.stdout-logger-class</c>), used before the logging bridge starts and after it
/// stops, and handed whatever was still queued for the bridge when it stopped: warnings and errors go to standard error,
/// except remoting's noise about workers that have just exited (<see cref="ExpectedEventsAsDebug.Noise"/>); the rest is
/// dropped.
/// </summary>
internal sealed class QuietStdoutLogger : Akka.Event.MinimalLogger
{
    protected override void Log(object message)
    {
        if (message is Akka.Event.LogEvent e && e.LogLevel() >= Akka.Event.LogLevel.WarningLevel
            && !ExpectedEventsAsDebug.Noise().IsMatch(e.ToString()))
            Console.Error.WriteLine(e.ToString());
    }
}

/// <summary>
/// A worker process that exits (retired, replaced, or killed) closes its connection, and Akka's remoting reports
/// that as warnings and errors with stack traces. The pool reports a real loss itself, once, in one line; this
/// logger factory turns remoting's messages about the same event into debug entries.
/// </summary>
internal sealed partial class ExpectedEventsAsDebug(ILoggerFactory inner) : ILoggerFactory
{
    public ILogger CreateLogger(string categoryName) => new Logger(inner.CreateLogger(categoryName));

    public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

    public void Dispose()
    {
        // The factory belongs to the caller.
    }

    [GeneratedRegex(@"Association with remote system .* has failed|EndpointDisassociatedException|Disassociated|Remoting shut down|Shutting down remote daemon|Remote daemon shut down|Connection refused|address is now gated|Association to \[.*\] .* failed|ShutDownAssociation|InvalidAssociation|Half-close failed|Transport endpoint is not connected|Unable to REMOVE channel",
        RegexOptions.CultureInvariant)]
    internal static partial Regex Noise();

    private sealed class Logger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel) || logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning && logLevel < LogLevel.Critical && Noise().IsMatch(formatter(state, exception)))
                logLevel = LogLevel.Debug;
            if (inner.IsEnabled(logLevel))
                inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}
