using ActorPool.Execution;
using ActorPool.Worker;
using Xunit;

namespace ActorPool.Tests.Execution;

/// <summary>The fast path for task functions that capture nothing: what takes it, what does not, and bad bytes.</summary>
public class FunctionCodecSpec
{
    private const byte FunctionFormat = 2, HyperionFormat = 0;

    private static int Square(int x) => x * x;

    private static string Describe(List<(string Name, int[] Values)> items) => string.Join(";", items.Select(i => $"{i.Name}={i.Values.Sum()}"));

    private static void Ignore(string _)
    {
    }

    private static TaskFunction RoundTrip(TaskFunction function, out byte format)
    {
        var bytes = Payload.Serialize(function);
        format = bytes[0];
        return (TaskFunction)Payload.Deserialize(bytes)!;
    }

    private static object Run(TaskFunction function, object items) => function.Run(items, new TaskClock()).Results.GetValue(0)!;

    [Fact]
    public void A_static_method_and_a_lambda_that_captures_nothing_must_travel_by_reference_and_run()
    {
        var square = RoundTrip(new MapFunction<int, int>(Square), out var format);
        Assert.Equal(FunctionFormat, format);
        Assert.Equal(49, Run(square, new[] { 7 }));

        var lambda = RoundTrip(new MapFunction<int, string>(x => $"<{x}>"), out format);
        Assert.Equal(FunctionFormat, format);
        Assert.Equal("<3>", Run(lambda, new[] { 3 }));

        var nested = RoundTrip(new MapFunction<List<(string, int[])>, string>(Describe), out format);
        Assert.Equal(FunctionFormat, format);
        Assert.Equal("a=3;b=0", Run(nested, new[] { new List<(string, int[])> { ("a", [1, 2]), ("b", []) } }));

        var action = RoundTrip(new ActionFunction<string>(Ignore), out format);
        Assert.Equal(FunctionFormat, format);
        Assert.IsType<ActionFunction<string>>(action);

        var cancellable = RoundTrip(new CancellableMapFunction<int, bool>((x, token) => token.CanBeCanceled && x > 0), out format);
        Assert.Equal(FunctionFormat, format);
        Assert.IsType<CancellableMapFunction<int, bool>>(cancellable);

        var framework = RoundTrip(new MapFunction<string, bool>(string.IsNullOrEmpty), out format);
        Assert.Equal(FunctionFormat, format);
        Assert.Equal(true, Run(framework, new[] { "" }));
    }

    [Fact]
    public void A_closure_over_plain_values_must_travel_with_them_and_run()
    {
        var k = 5;
        var unit = 0.25;
        string? nothing = null;
        var tag = "t";
        var day = DayOfWeek.Friday;
        var when = new DateTime(2026, 12, 2, 10, 0, 0, DateTimeKind.Utc);
        var closure = RoundTrip(new MapFunction<int, string>(x => $"{tag}{x * k * unit}{nothing ?? "-"}{day}{when:yyyy}"), out var format);
        Assert.Equal(FunctionFormat, format);
        Assert.Equal("t2.5-Friday2026", Run(closure, new[] { 2 }));
    }

    private sealed class Box
    {
        public int Value = 3;
    }

    [Fact]
    public void A_closure_over_an_object_must_keep_going_through_Hyperion_with_its_captured_values()
    {
        var box = new Box();
        var closure = RoundTrip(new MapFunction<int, int>(x => x * box.Value), out var format);
        Assert.Equal(HyperionFormat, format);
        Assert.Equal(6, Run(closure, new[] { 2 }));
        Assert.Null(FunctionCodec.TryEncode(new MapFunction<int, int>(x => x * box.Value), FunctionFormat));
        Assert.Null(FunctionCodec.TryEncode("not a function", FunctionFormat));
    }

    [Fact]
    public void A_function_from_another_build_of_its_assembly_must_be_found_by_name()
    {
        var bytes = FunctionCodec.TryEncode(new MapFunction<int, int>(Square), FunctionFormat)!;
        // The module version ids (the declaring type's, then the method's) as another build would have them.
        var mvid = typeof(FunctionCodecSpec).Module.ModuleVersionId.ToByteArray();
        var changed = 0;
        for (var i = 0; i + mvid.Length <= bytes.Length; i++)
        {
            if (!bytes.AsSpan(i, mvid.Length).SequenceEqual(mvid))
                continue;
            bytes[i] ^= 0xFF;
            changed++;
        }
        Assert.Equal(2, changed);
        var copy = (TaskFunction)Payload.Deserialize(bytes)!;
        Assert.Equal(81, Run(copy, new[] { 9 }));
    }

    [Fact]
    public void Damaged_bytes_must_be_refused_with_what_is_wrong()
    {
        var bytes = FunctionCodec.TryEncode(new MapFunction<int, int>(Square), FunctionFormat)!;
        var truncated = bytes[..(bytes.Length / 2)];
        Assert.Contains("cannot be rebuilt", Assert.Throws<InvalidDataException>(() => Payload.Deserialize(truncated)).Message);
        var kind = (byte[])bytes.Clone();
        kind[1] = 9;
        Assert.Contains("Unknown task function kind 9", Assert.Throws<InvalidDataException>(() => Payload.Deserialize(kind)).Message);
        var type = (byte[])bytes.Clone();
        type[3] = 0xEE;
        Assert.Contains("Unknown type code", Assert.Throws<InvalidDataException>(() => Payload.Deserialize(type)).Message);
    }
}
