using System.Diagnostics;

namespace ActorPool.Diagnostics;

/// <summary>
/// The <c>ActorPool</c> ActivitySource: a span per call in the caller (<c>ActorPool map</c>, <c>ActorPool imap</c>, …; kind
/// Client) and a span per task in the worker process that runs it (<c>ActorPool task</c>; kind Server), its parent the
/// call's span: the call's W3C trace context travels with each chunk, so one trace shows a map across processes. Spans
/// are made only while something listens (the OpenTelemetry SDK with <c>AddSource("ActorPool")</c>, in the caller, and in
/// workers through the pool's initializer).
/// </summary>
internal static class PoolTracing
{
    public const string SourceName = "ActorPool";

    public static readonly ActivitySource Source = new(SourceName, typeof(PoolTracing).Assembly.GetName().Version?.ToString());

    /// <summary>A call's span, with the tags every call has; null when nobody listens.</summary>
    public static Activity? StartCall(string operation, long? callId, long? totalTasks)
    {
        if (!Source.HasListeners())
            return null;
        var activity = Source.StartActivity($"ActorPool {operation}", ActivityKind.Client);
        if (activity is null)
            return null;
        activity.SetTag("actorpool.operation", operation);
        if (callId is { } id)
            activity.SetTag("actorpool.call.id", id);
        if (totalTasks is { } total)
            activity.SetTag("actorpool.tasks", total);
        return activity;
    }

    /// <summary>
    /// The W3C traceparent of <paramref name="span"/>, sent with each chunk; null without a span, or for one in the
    /// hierarchical id format (a process that set <c>Activity.DefaultIdFormat</c> so has no W3C trace to continue).
    /// </summary>
    public static string? TraceParent(Activity? span) =>
        span is not { IdFormat: ActivityIdFormat.W3C } ? null
            : $"00-{span.TraceId.ToHexString()}-{span.SpanId.ToHexString()}-{((span.ActivityTraceFlags & ActivityTraceFlags.Recorded) != 0 ? "01" : "00")}";

    /// <summary>A task's span in the worker, child of the call's span (<paramref name="parent"/>); null when nobody listens.</summary>
    public static Activity? StartTask(in ActivityContext parent, long callId, long taskIndex, int attempt)
    {
        if (!Source.HasListeners())
            return null;
        var activity = Source.StartActivity("ActorPool task", ActivityKind.Server, parent);
        if (activity is null)
            return null;
        activity.SetTag("actorpool.call.id", callId);
        activity.SetTag("actorpool.task.index", taskIndex);
        activity.SetTag("actorpool.task.attempt", attempt);
        activity.SetTag("process.pid", Environment.ProcessId);
        return activity;
    }

    /// <summary>Marks a span failed with the exception's type and message (the OpenTelemetry convention's attributes).</summary>
    public static void Fail(Activity? activity, Exception error)
    {
        if (activity is null)
            return;
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.SetTag("error.type", error.GetType().FullName);
    }
}
