// OrderService.cs - order placement and pricing.
using System;
using System.Collections.Generic;
using System.Threading.Tasks;

namespace Shop.Orders
{
    /// <summary>States an order moves through.</summary>
    public enum OrderStatus
    {
        Pending,
        Paid,
        Shipped,
    }

    /// <summary>Anything that can price an order line.</summary>
    public interface IPricingRule
    {
        decimal Apply(decimal subtotal, int quantity);
    }

    public record OrderLine(string Sku, int Quantity, decimal UnitPrice);

    /// <summary>
    /// Places orders and applies pricing rules.
    /// </summary>
    [Serializable]
    public sealed class OrderService
    {
        private readonly List<IPricingRule> _rules = new();

        public OrderService(IEnumerable<IPricingRule> rules)
        {
            _rules.AddRange(rules);
        }

        public int Count { get; private set; }

        /// <summary>Total of one line after every rule.</summary>
        public decimal Price(OrderLine line)
        {
            var total = line.UnitPrice * line.Quantity;
            foreach (var rule in _rules)
            {
                total = rule.Apply(total, line.Quantity);
            }
            return total;
        }

        // Overload for several lines at once.
        public decimal Price(IEnumerable<OrderLine> lines)
        {
            decimal sum = 0;
            foreach (var line in lines)
            {
                sum += Price(line);
            }
            return sum;
        }

        [Obsolete("Use PlaceAsync")]
        public void Place(OrderLine line) => PlaceAsync(line).Wait();

        public async Task PlaceAsync(OrderLine line)
        {
            await Task.Delay(1);
            Count++;
        }

        /// <summary>Ten percent off orders of ten or more.</summary>
        private sealed class BulkDiscount : IPricingRule
        {
            public decimal Apply(decimal subtotal, int quantity) =>
                quantity >= 10 ? subtotal * 0.9m : subtotal;
        }
    }

    public struct Money
    {
        public decimal Amount;
        public string Currency;

        public override string ToString() => $"{Amount} {Currency}";
    }
}
