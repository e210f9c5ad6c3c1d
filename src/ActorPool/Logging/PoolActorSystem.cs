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
        try
        {
            return ActorSystem.Create(name, setup);
        }
        catch (Exception e) when (AddressInUse(e))
        {
            // Akka's answer is a screen of nested AggregateExceptions; the cause is one fact.
            var tcp = config.GetConfig("akka.remote.dot-netty.tcp");
            var host = tcp?.GetString("hostname") is { Length: > 0 } h ? h : "0.0.0.0";
            var port = tcp?.GetInt("port") ?? 0;
            throw new ActorPoolException(
                $"Cannot listen on {host}:{port}: the address is already in use (by another process, or another copy of this program). " +
                "Set akka.remote.dot-netty.tcp.port to a free port (0 takes any free one), or stop the process that holds it.", e);
        }
    }

    private static bool AddressInUse(Exception e) => e switch
    {
        System.Net.Sockets.SocketException { SocketErrorCode: System.Net.Sockets.SocketError.AddressAlreadyInUse } => true,
        AggregateException a => a.InnerExceptions.Any(AddressInUse),
        { InnerException: { } inner } => AddressInUse(inner),
        _ => false,
    };
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
        if (message is not Akka.Event.LogEvent e || e.LogLevel() < Akka.Event.LogLevel.WarningLevel)
            return;
        var text = e.ToString();
        if (TlsRefusal.Summarize(text) is { Matched: true } refusal)
        {
            if (refusal.Line is { } line)
                Console.Error.WriteLine(line);
            return;
        }
        if (!ExpectedEventsAsDebug.Noise().IsMatch(text))
            Console.Error.WriteLine(text);
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

    [GeneratedRegex(@"Association with remote system .* has failed|EndpointDisassociatedException|Disassociated|Remoting shut down|Shutting down remote daemon|Remote daemon shut down|Connection refused|address is now gated|Association to \[.*\] .* failed|ShutDownAssociation|InvalidAssociation|Half-close failed|Transport endpoint is not connected|Unable to REMOVE channel|Detected unreachable: \[akka(\.ssl)?\.tcp://actorpool-(client|worker)@",
        RegexOptions.CultureInvariant)]
    internal static partial Regex Noise();

    private sealed class Logger(ILogger inner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => inner.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel) || logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel >= LogLevel.Warning && TlsRefusal.Summarize(formatter(state, exception)) is var summary && summary.Matched)
            {
                // A peer without the key: one line, at most once per interval, however often it knocks.
                if (summary.Line is { } line && inner.IsEnabled(LogLevel.Warning))
                    inner.Log(LogLevel.Warning, eventId, line, null, static (s, _) => s);
                return;
            }
            if (logLevel >= LogLevel.Warning && logLevel < LogLevel.Critical && Noise().IsMatch(formatter(state, exception)))
                logLevel = LogLevel.Debug;
            if (inner.IsEnabled(logLevel))
                inner.Log(logLevel, eventId, state, exception, formatter);
        }
    }
}

/// <summary>
/// Akka's DotNetty transport logs every failed TLS handshake as an error with a screen of troubleshooting text and two
/// stack traces. A failed handshake is a peer without the pool's key (or the cluster's secret) being kept out, as
/// designed: this turns those into one warning line, at most once per interval per process, with the count since.
/// </summary>
internal static class TlsRefusal
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    /// <summary>What the transport says, in its several messages, about one connection that failed TLS.</summary>
    private static readonly string[] Patterns =
        ["TLS handshake failed", "NotSslRecordException", "Certificate pinning failed", "due to TLS handshake failure", "RemoteCertificateValidationCallback"];
    private static long _lastLogged = long.MinValue;
    private static int _suppressed;

    /// <summary>
    /// Whether <paramref name="text"/> is about a failed TLS handshake and, if it should be logged now, its line, with the
    /// reason where the transport says it.
    /// </summary>
    public static (bool Matched, string? Line) Summarize(string text)
    {
        if (!Patterns.Any(p => text.Contains(p, StringComparison.Ordinal)))
            return (false, null);
        var why = text.Contains("NotSslRecordException", StringComparison.Ordinal) ? "the peer does not speak TLS: it does not hold the pool's key"
            : text.Contains("Certificate pinning failed", StringComparison.Ordinal) || text.Contains("RemoteCertificateValidationCallback", StringComparison.Ordinal)
                || text.Contains("remote certificate", StringComparison.OrdinalIgnoreCase)
                ? text.Contains("(Client side)", StringComparison.Ordinal)
                    ? "this process does not trust the certificate of the peer it connected to (or that peer does not trust this one's)"
                    : "the peer's certificate is not the pool's (or the cluster's)"
            : "a process without the pool's key (or the cluster's secret or certificate) was refused, or a peer left mid-handshake";
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastLogged);
        if (last != long.MinValue && now - last < Interval.TotalMilliseconds)
        {
            Interlocked.Increment(ref _suppressed);
            return (true, null);
        }
        Interlocked.Exchange(ref _lastLogged, now);
        var more = Interlocked.Exchange(ref _suppressed, 0);
        var channel = System.Text.RegularExpressions.Regex.Match(text, @"channel \[\[?(?<c>[^\]]*)\]") is { Success: true } m ? $" ({m.Groups["c"].Value})" : "";
        return (true, $"Refused a connection{channel}: TLS handshake failed; {why}.{(more > 0 ? $" {more} more since the last report." : "")}");
    }
}
