using Microsoft.Extensions.Logging;

namespace ActorPool.Logging;

/// <summary>The logger a pool uses when the application gives none: warnings and errors, one line each, on the console.</summary>
internal static class ConsoleLogging
{
    public static ILoggerFactory CreateDefault() => LoggerFactory.Create(builder => builder
        .SetMinimumLevel(LogLevel.Warning)
        .AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace) // logs never mix into program output
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.IncludeScopes = false;
            o.TimestampFormat = null;
        }));
}
