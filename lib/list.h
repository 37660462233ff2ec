/* Intrusive lists, as in libuv's queue.h. Not installed. */
#ifndef SALVO_LIST_H
#define SALVO_LIST_H

#include <stddef.h>

#define SALVO__CONTAINER_OF(ptr, type, field) ((type *)((char *)(ptr)-offsetof(type, field)))

/* Intrusive circular doubly linked list, as in libuv's queue.h. */
typedef struct salvo__list_s {
  struct salvo__list_s *prev;
  struct salvo__list_s *next;
} salvo__list_t;

static inline void salvo__list_init(salvo__list_t *head) { head->prev = head->next = head; }
static inline int salvo__list_empty(const salvo__list_t *head) { return head->next == head; }
static inline int salvo__list_linked(const salvo__list_t *node) {
  return node->next != NULL && node->next != node;
}
static inline void salvo__list_push_back(salvo__list_t *head, salvo__list_t *node) {
  node->prev = head->prev;
  node->next = head;
  head->prev->next = node;
  head->prev = node;
}
static inline void salvo__list_push_front(salvo__list_t *head, salvo__list_t *node) {
  node->next = head->next;
  node->prev = head;
  head->next->prev = node;
  head->next = node;
}
static inline void salvo__list_remove(salvo__list_t *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = node->next = node; /* so salvo__list_linked() is false afterwards */
}

#endif /* SALVO_LIST_H */
